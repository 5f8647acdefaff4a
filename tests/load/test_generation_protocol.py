"""The generation protocol both engines speak (chaos/run/protocol.py): what is sent, and how
answers become a RequestRecord. No stack needed."""

from __future__ import annotations

import httpx
import pytest

from chaos.run import protocol
from chaos.run.observations import RequestRecord

pytestmark = pytest.mark.load

FAL_503 = "the sentence of the FAL 503"


def record() -> RequestRecord:
    return RequestRecord(t=1.0, status=None, latency_s=0.0, trace_id=protocol.new_trace_id())


def test_requests_of_one_trace_share_its_id_and_only_replayed_ones_carry_a_key():
    trace_id = protocol.new_trace_id()
    plain = protocol.headers("tok", trace_id)
    keyed = protocol.headers("tok", trace_id, idempotent=True)
    assert plain["Authorization"] == "Bearer tok" and "Idempotency-Key" not in plain
    assert plain["traceparent"].split("-")[1] == keyed["traceparent"].split("-")[1] == trace_id
    assert plain["traceparent"] != keyed["traceparent"]  # a fresh span per request
    assert keyed["Idempotency-Key"] == protocol.headers("other", trace_id, idempotent=True)["Idempotency-Key"]
    assert [protocol.replays(n) for n in range(8)] == [False, False, False, True] * 2
    assert protocol.request_body("m", trace_id) == {"model_id": "m", "prompt": f"genchaos {trace_id[:8]}"}


def test_a_503_is_recorded_with_its_reason_sentence_and_retry_after():
    r = record()
    protocol.record_submission(r, httpx.Response(503, json={"detail": FAL_503},
                                                 headers={"Retry-After": "1", "X-Genchaos-503-Reason": "fal_unavailable"}))
    assert (r.status, r.detail, r.retry_after, r.reason_503, r.generation_id) == (
        503, FAL_503, "1", "fal_unavailable", None)
    assert not r.accepted


def test_an_accepted_post_keeps_its_generation_and_a_non_json_error_its_text():
    accepted = record()
    protocol.record_submission(accepted, httpx.Response(202, json={"id": "g1", "status": "pending"}))
    assert accepted.accepted and accepted.generation_id == "g1" and accepted.detail is None
    broken = record()
    protocol.record_submission(broken, httpx.Response(502, text="<html>bad gateway</html>"))
    assert broken.detail == "<html>bad gateway</html>" and broken.generation_id is None


def test_only_a_terminal_body_ends_a_generation_and_it_keeps_the_image_url():
    r = record()
    assert not protocol.record_terminal(r, {"status": "processing"}, 2.0)
    assert r.final_status is None
    assert protocol.record_terminal(r, {"status": "completed", "image_url": "https://s/x.png", "error": None}, 3.5)
    assert (r.final_status, r.terminal_t, r.image_url) == ("completed", 3.5, "https://s/x.png")


@pytest.mark.parametrize("response, verdict", [
    (httpx.Response(200, json={"id": "g1"}), True),
    (httpx.Response(202, json={"id": "g2"}), False),  # a second generation: not idempotent
    (httpx.Response(409, json={"detail": "conflict"}), False),
    (httpx.Response(503, json={"detail": FAL_503}), None),  # the replay failed: says nothing
    (None, None),
])
def test_replay_verdict(response, verdict):
    assert protocol.replay_verdict(response, "g1") is verdict
