"""The generation protocol both engines speak (chaos/run/protocol.py), as the reference service's contract
shapes it: what is sent, and how answers become a RequestRecord. No stack needed."""

from __future__ import annotations

import httpx
import pytest

from chaos.contract.model import default_contract
from chaos.run import protocol
from chaos.run.observations import RequestRecord

pytestmark = pytest.mark.load

REFERENCE = default_contract()
API = protocol.GenerationProtocol(REFERENCE)
FAL_503 = REFERENCE.sentences.fal_unavailable


def record() -> RequestRecord:
    return RequestRecord(t=1.0, status=None, latency_s=0.0, trace_id=protocol.new_trace_id())


def test_requests_of_one_trace_share_its_id_and_only_replayed_ones_carry_a_key():
    trace_id = protocol.new_trace_id()
    plain = API.headers("tok", trace_id)
    keyed = API.headers("tok", trace_id, idempotent=True)
    assert plain["Authorization"] == "Bearer tok" and "Idempotency-Key" not in plain
    assert plain["traceparent"].split("-")[1] == keyed["traceparent"].split("-")[1] == trace_id
    assert plain["traceparent"] != keyed["traceparent"]  # a fresh span per request
    assert keyed["Idempotency-Key"] == API.headers("other", trace_id, idempotent=True)["Idempotency-Key"]
    assert [protocol.replays(n) for n in range(8)] == [False, False, False, True] * 2
    assert [API.replays(n) for n in range(8)] == [False, False, False, True] * 2  # the reference claims keys


def test_the_body_follows_the_contract_and_its_prompt_carries_the_trace_marker():
    trace_id = protocol.new_trace_id()
    body = API.request_body(trace_id, "m")
    assert body["model_id"] == "m" and set(body) == {"model_id", "prompt"}
    assert protocol.marker(trace_id) == f"genchaos-{trace_id}" and protocol.marker(trace_id) in body["prompt"]
    assert protocol.marked_trace(body["prompt"]) == trace_id
    assert API.request_body(trace_id)["model_id"] == REFERENCE.model_id
    assert protocol.marked_trace("a lighthouse at dusk") is None


def test_a_503_is_recorded_with_its_reason_sentence_and_retry_after():
    r = record()
    API.record_submission(r, httpx.Response(503, json={"detail": FAL_503},
                                            headers={"Retry-After": "1", "X-Genchaos-503-Reason": "fal_unavailable"}))
    assert (r.status, r.detail, r.retry_after, r.reason_503, r.causes, r.generation_id) == (
        503, FAL_503, "1", "fal_unavailable", ("fal_unavailable",), None)
    assert not r.accepted


def test_a_503_whose_header_and_sentence_disagree_has_no_cause():
    r = record()
    API.record_submission(r, httpx.Response(503, json={"detail": FAL_503},
                                            headers={"X-Genchaos-503-Reason": "database_unavailable"}))
    assert r.reason_503 == "database_unavailable" and r.causes == ()


def test_an_accepted_status_without_an_id_is_not_accepted_and_an_id_outside_it_is_ignored():
    no_id = record()
    API.record_submission(no_id, httpx.Response(202, json={"status": "pending"}))
    assert no_id.generation_id is None and not no_id.accepted
    other = record()
    API.record_submission(other, httpx.Response(200, json={"id": "g1"}))  # 200 is not the contract's accepted
    assert other.generation_id is None and not other.accepted


def test_an_accepted_post_keeps_its_generation_and_a_non_json_error_its_text():
    accepted = record()
    API.record_submission(accepted, httpx.Response(202, json={"id": "g1", "status": "pending"}))
    assert accepted.accepted and accepted.generation_id == "g1" and accepted.detail is None
    broken = record()
    API.record_submission(broken, httpx.Response(502, text="<html>bad gateway</html>"))
    assert broken.detail == "<html>bad gateway</html>" and broken.generation_id is None


def test_only_a_terminal_body_ends_a_generation_and_it_keeps_the_image_url():
    r = record()
    assert not API.record_terminal(r, {"status": "processing"}, 2.0)
    assert r.final_status is None
    assert API.record_terminal(r, {"status": "completed", "image_url": "https://s/x.png", "error": None}, 3.5)
    assert (r.final_status, r.terminal_t, r.image_url) == ("completed", 3.5, "https://s/x.png")


@pytest.mark.parametrize("response, verdict", [
    (httpx.Response(200, json={"id": "g1"}), True),
    (httpx.Response(202, json={"id": "g2"}), False),  # a second generation: not idempotent
    (httpx.Response(409, json={"detail": "conflict"}), False),
    (httpx.Response(503, json={"detail": FAL_503}), None),  # the replay failed: says nothing
    (None, None),
])
def test_replay_verdict(response, verdict):
    assert API.replay_verdict(response, "g1") is verdict
