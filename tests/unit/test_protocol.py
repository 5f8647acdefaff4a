"""The generation protocol as a contract shapes it: lumen's own paths, body, fields and status values, and a
503's causes read from its sentence, with the cause header as a second witness only where the contract
names one."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from chaos.contract.model import default_contract, load_contract, parse_contract
from chaos.run import protocol
from chaos.run.observations import RequestRecord

LUMEN_FILE = Path(__file__).resolve().parents[2] / "examples" / "lumen" / "genchaos.yaml"
LUMEN = protocol.GenerationProtocol(load_contract(LUMEN_FILE))
REFERENCE_CONTRACT = default_contract()
REFERENCE = protocol.GenerationProtocol(REFERENCE_CONTRACT)
SENTENCES = REFERENCE_CONTRACT.sentences
HEADER = "X-Genchaos-503-Reason"


def record() -> RequestRecord:
    return RequestRecord(t=1.0, status=None, latency_s=0.0, trace_id=protocol.new_trace_id())


def submitted(api: protocol.GenerationProtocol, response: httpx.Response) -> RequestRecord:
    r = record()
    api.record_submission(r, response)
    return r


def refusal(sentence: str, header: str | None = None) -> httpx.Response:
    return httpx.Response(503, json={"detail": sentence}, headers={HEADER: header} if header else {})


# --- lumen's API --------------------------------------------------------------------------------

def test_lumen_is_spoken_to_on_its_own_paths():
    assert LUMEN.submit_path == "/v2/images" and LUMEN.list_path == "/v2/images"
    assert LUMEN.generation_path("j-7") == "/v2/images/j-7"


def test_lumens_body_has_its_own_keys_and_a_prompt_marked_with_the_trace():
    trace_id = protocol.new_trace_id()
    body = LUMEN.request_body(trace_id)
    assert set(body) == {"model", "prompt"} and body["model"] == "fal-ai/flux/dev"
    assert body["prompt"].endswith(f" genchaos-{trace_id}")
    assert protocol.marked_trace(body["prompt"]) == trace_id
    assert LUMEN.request_body(trace_id, "fal-ai/other")["model"] == "fal-ai/other"


def test_a_nested_body_template_is_filled_throughout():
    contract = parse_contract({"name": "nested", "start": {"url": "http://h:1"}, "api": {"submit": {"body": {
        "input": {"prompt": "{prompt}", "tags": ["{model_id}", 3]}, "model_id": "{model_id}", "n": 1}}}})
    body = protocol.GenerationProtocol(contract).request_body("ab" * 16, "m")
    assert body == {"input": {"prompt": f"a lighthouse at dusk genchaos-{'ab' * 16}", "tags": ["m", 3]},
                    "model_id": "m", "n": 1}


def test_lumens_accepted_job_is_read_from_job_id():
    accepted = submitted(LUMEN, httpx.Response(202, json={"job_id": "j-1", "state": "queued"}))
    assert accepted.generation_id == "j-1" and accepted.accepted
    reference_shape = submitted(LUMEN, httpx.Response(202, json={"id": "g-1", "status": "pending"}))
    assert reference_shape.generation_id is None and not reference_shape.accepted


def test_lumens_done_is_completed_and_its_error_is_failed():
    done = record()
    assert LUMEN.record_terminal(done, {"job_id": "j-1", "state": "done", "result_url": "https://s/x.png"}, 2.0)
    assert (done.final_status, done.image_url, done.terminal_t) == ("completed", "https://s/x.png", 2.0)
    broken = record()
    assert LUMEN.record_terminal(broken, {"job_id": "j-2", "state": "error", "failure": "FAL said no"}, 3.0)
    assert (broken.final_status, broken.error) == ("failed", "FAL said no")
    structured = record()
    assert LUMEN.record_terminal(structured, {"state": "error", "failure": {"code": 7}}, 3.0)
    assert structured.error == '{"code": 7}'


def test_lumens_other_states_and_the_references_names_are_not_terminal():
    for body in ({"state": "queued"}, {"state": "running"}, {"state": "completed"}, {"status": "done"},
                 {"status": "failed"}):
        assert LUMEN.terminal_status(body) is None, body
    assert REFERENCE.terminal_status({"status": "completed"}) == "completed"
    assert REFERENCE.terminal_status({"status": "done"}) is None


def test_lumens_list_is_read_from_data():
    assert LUMEN.listed_ids({"data": [{"job_id": "j-1"}, {"job_id": 2}, {"other": "x"}]}) == ["j-1", "2"]
    assert LUMEN.listed_ids({"items": [{"job_id": "j-1"}]}) is None
    assert LUMEN.listed_ids([{"job_id": "j-1"}]) is None
    assert REFERENCE.listed_ids({"items": [{"id": "g-1"}]}) == ["g-1"]


def test_a_list_endpoint_whose_body_is_the_list():
    contract = parse_contract({"name": "bare", "start": {"url": "http://h:1"},
                               "api": {"list": {"path": "/jobs", "items": None}}})
    assert protocol.GenerationProtocol(contract).listed_ids([{"id": "a"}, {"id": "b"}]) == ["a", "b"]


def test_replays_only_where_the_contract_claims_idempotency_keys():
    assert not any(LUMEN.replays(n) for n in range(12))
    assert [REFERENCE.replays(n) for n in range(8)] == [protocol.replays(n) for n in range(8)]
    assert any(REFERENCE.replays(n) for n in range(8))


# --- a 503's causes -----------------------------------------------------------------------------

@pytest.mark.parametrize(("sentence", "causes"), [
    (SENTENCES.fal_unavailable, ("fal_unavailable",)),
    (SENTENCES.database_unavailable, ("database_unavailable",)),
    (SENTENCES.storage_unavailable, ("storage_unavailable",)),
    (SENTENCES.high_load, ("breaker_open", "overloaded")),  # the one sentence serves both
    ("Service Unavailable", ()),
])
def test_without_a_cause_header_the_sentence_alone_names_the_causes(sentence, causes):
    r = submitted(LUMEN, refusal(sentence, header="database_unavailable"))  # a header lumen's contract ignores
    assert r.causes == causes and r.reason_503 is None


@pytest.mark.parametrize(("sentence", "header", "causes"), [
    (SENTENCES.fal_unavailable, "fal_unavailable", ("fal_unavailable",)),
    (SENTENCES.high_load, "breaker_open", ("breaker_open",)),
    (SENTENCES.high_load, "overloaded", ("overloaded",)),
    (SENTENCES.fal_unavailable, "database_unavailable", ()),  # the header disagrees with the sentence
    (SENTENCES.high_load, "fal_unavailable", ()),
    (SENTENCES.fal_unavailable, None, ()),  # the header the contract promises is missing
    ("Service Unavailable", "fal_unavailable", ()),
])
def test_with_a_cause_header_it_must_agree_with_the_sentence(sentence, header, causes):
    r = submitted(REFERENCE, refusal(sentence, header))
    assert r.causes == causes and r.reason_503 == header


def test_a_service_with_its_own_sentences_is_read_by_them():
    contract = parse_contract({"name": "terse", "start": {"url": "http://h:1"},
                               "sentences": {"database_unavailable": "db down", "high_load": "busy"}})
    api = protocol.GenerationProtocol(contract)
    assert submitted(api, refusal("db down")).causes == ("database_unavailable",)
    assert submitted(api, refusal("busy")).causes == ("breaker_open", "overloaded")
    assert submitted(api, refusal(SENTENCES.database_unavailable)).causes == ()


def test_only_a_503_has_causes():
    r = submitted(LUMEN, httpx.Response(500, json={"detail": SENTENCES.fal_unavailable}))
    assert r.causes == () and r.detail == SENTENCES.fal_unavailable
