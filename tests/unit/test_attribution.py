"""503 ground truth: a 503 must name the dependency the harness broke, by its sentence and, where the
contract names a cause header (the reference service's), by that header too; each case sits next to the
one that turns it wrong."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from chaos.contract.model import load_contract
from chaos.judge.attribution import (
    attributions,
    broken_during,
    misattributed_503,
    misattribution_examples,
)
from chaos.run.observations import RequestRecord
from chaos.run.protocol import GenerationProtocol
from tests.unit.judge_support import observation, refused, sentence, window

FAL_DOWN = window(2.0, 5.0, "fal", "down", proxy="fal", proxy_bytes=0)
DB_DOWN = window(2.0, 5.0, "database", "down", proxy="postgres", proxy_bytes=0)
STORAGE_DOWN = window(2.0, 5.0, "storage", "down", proxy="storage", proxy_bytes=0)


def test_fal_down_answered_with_fal_unavailable_is_attributed():
    obs = observation([refused(3.0, "fal_unavailable")], windows=[FAL_DOWN])
    assert misattributed_503(obs) == 0


def test_fal_down_answered_with_database_unavailable_is_misattributed():
    obs = observation([refused(3.0, "fal_unavailable"), refused(3.5, "database_unavailable")], windows=[FAL_DOWN])
    assert misattributed_503(obs) == 1
    assert misattribution_examples(obs) == ["at 3.5s said database_unavailable while fal was broken"]


def test_the_right_header_with_another_dependencys_sentence_is_misattributed():
    obs = observation([refused(3.0, "fal_unavailable", detail=sentence("database_unavailable"))],
                      windows=[FAL_DOWN])
    assert misattributed_503(obs) == 1


def test_the_right_header_without_a_sentence_is_misattributed():
    obs = observation([refused(3.0, "fal_unavailable", detail="Service Unavailable")], windows=[FAL_DOWN])
    assert misattributed_503(obs) == 1


def test_a_503_without_a_reason_header_is_misattributed():
    obs = observation([refused(3.0, None, detail=sentence("fal_unavailable"))], windows=[FAL_DOWN])
    assert misattributed_503(obs) == 1
    assert misattribution_examples(obs) == ["at 3.0s said no known sentence while fal was broken"]


@pytest.mark.parametrize(("fault", "right", "wrong"), [
    (STORAGE_DOWN, "storage_unavailable", "fal_unavailable"),
    (DB_DOWN, "database_unavailable", "storage_unavailable"),
])
def test_each_dependency_must_be_named_for_its_own_fault(fault, right, wrong):
    assert misattributed_503(observation([refused(3.0, right)], windows=[fault])) == 0
    assert misattributed_503(observation([refused(3.0, wrong)], windows=[fault])) == 1


def test_breaker_open_counts_only_where_the_scenario_allows_it():
    requests = [refused(3.0, "breaker_open")]
    assert misattributed_503(observation(requests, windows=[FAL_DOWN], allowed_503_reasons=["breaker_open"])) == 0
    assert misattributed_503(observation(requests, windows=[FAL_DOWN])) == 1
    # allowing one generic reason does not allow the other
    overloaded = [refused(3.0, "overloaded")]
    assert misattributed_503(observation(overloaded, windows=[FAL_DOWN], allowed_503_reasons=["breaker_open"])) == 1


def test_an_allowed_generic_reason_still_needs_its_own_sentence():
    obs = observation([refused(3.0, "breaker_open", detail=sentence("fal_unavailable"))],
                      windows=[FAL_DOWN], allowed_503_reasons=["breaker_open"])
    assert misattributed_503(obs) == 1


def test_during_two_simultaneous_faults_either_dependency_may_be_named():
    storage = window(3.0, 6.0, "storage", "down", proxy="storage", proxy_bytes=0)
    obs = observation([refused(4.0, "fal_unavailable"), refused(4.5, "storage_unavailable"),
                       refused(5.0, "database_unavailable")], windows=[FAL_DOWN, storage])
    assert [a.correct for a in attributions(obs)] == [True, True, False]
    assert attributions(obs)[0].broken == ("fal", "storage")


def test_a_503_while_nothing_is_broken_is_misattributed():
    obs = observation([refused(1.0, "fal_unavailable"), refused(9.0, "fal_unavailable")], windows=[FAL_DOWN])
    assert misattributed_503(obs) == 2
    assert misattribution_examples(obs)[0] == "at 1.0s said fal_unavailable while nothing was broken"


def test_the_settle_time_after_a_fault_still_counts_as_broken_up_to_its_edge():
    obs = observation([refused(6.9, "fal_unavailable"), refused(7.0, "fal_unavailable")],
                      windows=[FAL_DOWN], settle_s=2.0)
    assert broken_during(obs, 6.9, 6.91) == ("fal",)
    assert broken_during(obs, 7.0, 7.01) == ()
    assert [a.correct for a in attributions(obs)] == [True, False]


def test_without_settle_time_a_503_after_the_fault_ends_is_misattributed():
    obs = observation([refused(4.9, "fal_unavailable"), refused(5.1, "fal_unavailable")], windows=[FAL_DOWN])
    assert [a.correct for a in attributions(obs)] == [True, False]


def test_only_503s_are_judged():
    ok = refused(1.0, None)
    ok.status = 202
    obs = observation([ok], windows=[FAL_DOWN])
    assert attributions(obs) == []
    assert misattributed_503(obs) == 0


def test_examples_are_limited():
    obs = observation([refused(t, "database_unavailable") for t in (2.5, 3.0, 3.5, 4.0)], windows=[FAL_DOWN])
    assert misattributed_503(obs) == 4
    assert len(misattribution_examples(obs)) == 3
    assert len(misattribution_examples(obs, limit=1)) == 1


def test_an_allowed_generic_reason_while_nothing_is_broken_is_misattributed():
    obs = observation([refused(12.0, "breaker_open")], windows=[FAL_DOWN], allowed_503_reasons=["breaker_open"],
                      settle_s=2.0)
    assert misattributed_503(obs) == 1


def test_an_overloaded_queue_is_right_without_a_fault_only_where_the_scenario_overloads_on_purpose():
    shed = [refused(1.0, "overloaded")]
    assert misattributed_503(observation(shed, windows=[], allowed_503_reasons=["overloaded"])) == 0
    assert misattributed_503(observation(shed, windows=[])) == 1
    assert misattributed_503(observation([refused(1.0, "breaker_open")], windows=[],
                                         allowed_503_reasons=["overloaded", "breaker_open"])) == 1


def test_a_503_answered_during_the_fault_for_a_request_sent_just_before_it_is_attributed():
    # in the service when the database went down: judged by its whole stay, sent .. answered
    obs = observation([refused(1.95, "database_unavailable", latency_s=1.0)], windows=[DB_DOWN])
    assert misattributed_503(obs) == 0
    assert broken_during(obs, 1.95, 2.95) == ("database",)


def test_a_503_answered_before_the_fault_began_is_misattributed():
    obs = observation([refused(1.5, "database_unavailable", latency_s=0.4)], windows=[DB_DOWN])
    assert misattributed_503(obs) == 1


# --- a service without a cause header: its sentence alone says what it blames -------------------

HEADERLESS = GenerationProtocol(load_contract(Path(__file__).resolve().parents[2] / "examples/lumen/genchaos.yaml"))


def said(t: float, cause: str) -> RequestRecord:
    """A 503 carrying the sentence of ``cause`` and no cause header, read as the runner reads it."""
    record = RequestRecord(t=t, status=503, latency_s=0.01, trace_id=f"trace-{t}")
    HEADERLESS.record_submission(record, httpx.Response(503, json={"detail": sentence(cause)},
                                                        headers={"Retry-After": "1"}))
    return record


def test_the_database_sentence_during_a_database_fault_is_attributed():
    obs = observation([said(3.0, "database_unavailable")], windows=[DB_DOWN])
    assert misattributed_503(obs) == 0


def test_the_fal_sentence_during_a_database_fault_is_misattributed():
    obs = observation([said(3.0, "fal_unavailable")], windows=[DB_DOWN])
    assert misattributed_503(obs) == 1
    assert misattribution_examples(obs) == ["at 3.0s said fal_unavailable while database was broken"]


def test_the_high_load_sentence_during_a_fal_fault_is_attributed_only_where_breaker_open_is_allowed():
    busy = [said(3.0, "breaker_open")]
    assert busy[0].causes == ("breaker_open", "overloaded")
    assert misattributed_503(observation(busy, windows=[FAL_DOWN], allowed_503_reasons=["breaker_open"])) == 0
    assert misattributed_503(observation(busy, windows=[FAL_DOWN], allowed_503_reasons=["overloaded"])) == 0
    assert misattributed_503(observation(busy, windows=[FAL_DOWN])) == 1
    assert misattribution_examples(observation(busy, windows=[FAL_DOWN])) == [
        "at 3.0s said breaker_open/overloaded while fal was broken"]


def test_the_high_load_sentence_while_nothing_is_broken_is_misattributed_even_where_allowed():
    obs = observation([said(12.0, "breaker_open")], windows=[FAL_DOWN], allowed_503_reasons=["breaker_open"])
    assert misattributed_503(obs) == 1


def test_a_sentence_no_cause_has_is_misattributed():
    record = RequestRecord(t=3.0, status=503, latency_s=0.01, trace_id="trace-3.0")
    HEADERLESS.record_submission(record, httpx.Response(503, json={"detail": "Service Unavailable"}))
    obs = observation([record], windows=[FAL_DOWN], allowed_503_reasons=["breaker_open", "overloaded"])
    assert misattributed_503(obs) == 1
    assert misattribution_examples(obs) == ["at 3.0s said no known sentence while fal was broken"]
