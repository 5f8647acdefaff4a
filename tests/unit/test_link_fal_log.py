"""FAL's log tied to the generations it served, by the marker each prompt carries and by nothing the service
says: a job's polls, results and cancels follow its submission; a prompt without a marker ties to nothing.
And the breaker as clients saw it, for a service that does not publish its own."""

from __future__ import annotations

from typing import Any

import pytest

from chaos.run.observations import RequestRecord
from chaos.run.protocol import marker, new_trace_id
from chaos.run.runner import breaker_seen_by_clients, link_fal_log

STARTED_AT = 1_700_000_000.0
APP = "/fal-ai/flux/dev"


def accepted(t: float, generation_id: str) -> RequestRecord:
    return RequestRecord(t=t, status=202, latency_s=0.01, trace_id=new_trace_id(), generation_id=generation_id)


def job_call(t: float, kind: str, request_id: str | None, *, prompt: str | None = None, status: int = 200,
             header: str | None = None) -> dict[str, Any]:
    """One entry as the FAL emulator logs it: unix time, the service's generation header if it sent one,
    and the prompt of a submit or run call."""
    entry = {"t": STARTED_AT + t, "method": "POST" if kind in ("submit", "run") else "GET", "path": APP,
             "status": status, "request_id": request_id, "kind": kind, "generation_id": header}
    if kind in ("submit", "run"):
        entry["prompt"] = prompt
    return entry


def prompt_of(record: RequestRecord) -> str:
    return f"a lighthouse at dusk {marker(record.trace_id)}"


def test_a_submission_belongs_to_the_generation_whose_trace_its_prompt_marks():
    first, second = accepted(0.5, "g-1"), accepted(0.6, "g-2")
    log = [job_call(1.0, "submit", "r-2", prompt=prompt_of(second)),
           job_call(1.1, "submit", "r-1", prompt=prompt_of(first))]
    linked = link_fal_log(log, [first, second], STARTED_AT)
    assert [(e["request_id"], e["generation_id"]) for e in linked] == [("r-2", "g-2"), ("r-1", "g-1")]
    assert [e["t"] for e in linked] == pytest.approx([1.0, 1.1])  # relative to the scenario's start


def test_the_jobs_polls_results_and_cancels_inherit_its_generation():
    record = accepted(0.5, "g-1")
    log = [job_call(1.0, "submit", "r-1", prompt=prompt_of(record)), job_call(1.5, "status", "r-1"),
           job_call(2.0, "result", "r-1"), job_call(2.1, "cancel", "r-1"), job_call(2.2, "status", "r-other")]
    linked = link_fal_log(log, [record], STARTED_AT)
    assert [e["generation_id"] for e in linked] == ["g-1", "g-1", "g-1", "g-1", None]


def test_a_poll_logged_before_its_submission_still_inherits_it():
    record = accepted(0.5, "g-1")
    log = [job_call(1.5, "status", "r-1"), job_call(1.0, "submit", "r-1", prompt=prompt_of(record))]
    assert [e["generation_id"] for e in link_fal_log(log, [record], STARTED_AT)] == ["g-1", "g-1"]


def test_a_prompt_without_a_marker_ties_to_nothing_whatever_header_the_service_sent():
    record = accepted(0.5, "g-1")
    log = [job_call(1.0, "submit", "r-1", prompt="a lighthouse at dusk", header="g-1"),
           job_call(1.5, "status", "r-1", header="g-1")]
    linked = link_fal_log(log, [record], STARTED_AT)
    assert [e["generation_id"] for e in linked] == [None, None]
    assert [e["generation_id_header"] for e in linked] == ["g-1", "g-1"]  # kept apart, a second witness


def test_the_marker_wins_over_a_header_naming_another_generation():
    record = accepted(0.5, "g-1")
    linked = link_fal_log([job_call(1.0, "submit", "r-1", prompt=prompt_of(record), header="g-9")], [record],
                          STARTED_AT)
    assert (linked[0]["generation_id"], linked[0]["generation_id_header"]) == ("g-1", "g-9")


def test_a_marker_of_a_request_that_was_never_accepted_ties_to_nothing():
    refused = RequestRecord(t=0.5, status=503, latency_s=0.01, trace_id=new_trace_id())
    linked = link_fal_log([job_call(1.0, "submit", "r-1", prompt=prompt_of(refused))], [refused], STARTED_AT)
    assert linked[0]["generation_id"] is None


def test_a_run_call_without_a_request_id_is_tied_by_its_prompt_and_ties_no_poll():
    record = accepted(0.5, "g-1")
    linked = link_fal_log([job_call(1.0, "run", None, prompt=prompt_of(record)), job_call(1.5, "status", None)],
                          [record], STARTED_AT)
    assert [e["generation_id"] for e in linked] == ["g-1", None]


def test_every_attempt_of_one_generation_is_tied_to_it():
    record = accepted(0.5, "g-1")
    log = [job_call(1.0, "submit", None, prompt=prompt_of(record), status=500),
           job_call(1.2, "submit", "r-2", prompt=prompt_of(record)), job_call(1.4, "status", "r-2")]
    assert [e["generation_id"] for e in link_fal_log(log, [record], STARTED_AT)] == ["g-1", "g-1", "g-1"]


def test_the_emulators_entries_are_left_as_they_were():
    record = accepted(0.5, "g-1")
    log = [job_call(1.0, "submit", "r-1", prompt=prompt_of(record), header="g-x")]
    link_fal_log(log, [record], STARTED_AT)
    assert log[0]["t"] == STARTED_AT + 1.0 and log[0]["generation_id"] == "g-x" and "generation_id_header" not in log[0]


# --- the breaker as clients saw it --------------------------------------------------------------

def refused(t: float, causes: tuple[str, ...], latency_s: float = 0.01) -> RequestRecord:
    return RequestRecord(t=t, status=503, latency_s=latency_s, trace_id=f"trace-{t}", causes=causes)


def test_clients_see_the_breaker_open_at_each_high_load_503_and_closed_at_other_answers():
    records = [accepted(1.0, "g-1"), refused(2.0, ("breaker_open", "overloaded")), refused(2.5, ("breaker_open",)),
               refused(3.0, ("fal_unavailable",)), refused(3.5, ()),
               RequestRecord(t=4.0, status=None, latency_s=1.0, trace_id="lost")]
    samples = breaker_seen_by_clients(records)
    assert [(round(s.t, 2), s.states["fal"]) for s in samples] == [
        (1.01, "closed"), (2.01, "open"), (2.51, "open"), (3.01, "closed"), (3.51, "closed")]


def test_client_samples_are_in_the_order_the_answers_came():
    slow, quick = refused(1.0, ("breaker_open",), latency_s=2.0), accepted(2.0, "g-2")
    assert [s.states["fal"] for s in breaker_seen_by_clients([slow, quick])] == ["closed", "open"]
