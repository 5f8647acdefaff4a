"""What the service says about itself against what happened: each comparison agrees with a truthful
service and counts the disagreements of one that lies, forgets or stays silent."""

from __future__ import annotations

from chaos.judge import telemetry_truth
from chaos.run.observations import BreakerSample, ReadinessSample
from chaos.run.telemetry import counted_503s, counted_outcomes, sentence_group
from tests.unit.judge_support import REFERENCE, completed, failed, observation, refused, submit, window


def test_a_503_counter_that_matches_what_clients_received_agrees():
    obs = observation([refused(1.0, "fal_unavailable")])
    obs.counted_503s, obs.received_503s = {"fal_unavailable": 7}, {"fal_unavailable": 7}
    assert telemetry_truth.miscounted_503s(obs).disagreements == 0


def test_a_503_counter_that_never_moved_or_blames_another_cause_disagrees():
    obs = observation()
    obs.received_503s = {"fal_unavailable": 7, "breaker_open/overloaded": 3}
    obs.counted_503s = {}
    assert telemetry_truth.miscounted_503s(obs).disagreements == 10
    obs.counted_503s = {"database_unavailable": 7, "breaker_open/overloaded": 3}
    assert telemetry_truth.miscounted_503s(obs).disagreements == 14


def test_unanswered_calls_widen_the_503_tolerance_by_one_each():
    obs = observation()
    obs.received_503s, obs.counted_503s, obs.unanswered_calls = {"fal_unavailable": 5}, {"fal_unavailable": 7}, 2
    assert telemetry_truth.miscounted_503s(obs).disagreements == 0
    obs.unanswered_calls = 1
    assert telemetry_truth.miscounted_503s(obs).disagreements == 1


def test_the_503_counter_is_read_by_the_sentence_its_label_stands_for():
    before = {"genchaos_http_503_total{reason=fal_unavailable}": 2.0}
    after = {"genchaos_http_503_total{reason=fal_unavailable}": 5.0, "genchaos_http_503_total{reason=breaker_open}": 4.0,
             "genchaos_http_503_total{reason=overloaded}": 1.0, "genchaos_http_503_total{reason=mystery}": 1.0}
    assert counted_503s(before, after, REFERENCE) == {"fal_unavailable": 3, "breaker_open/overloaded": 5,
                                                      "unrecognised": 1}
    assert sentence_group(REFERENCE, REFERENCE.sentence("overloaded")) == "breaker_open/overloaded"
    assert sentence_group(REFERENCE, "Something else.") == "unrecognised"


def test_a_contract_maps_its_own_cause_labels():
    contract = REFERENCE.model_copy(deep=True)
    contract.telemetry.metrics.cause_values = {"upstream_down": "fal_unavailable"}
    after = {"genchaos_http_503_total{reason=upstream_down}": 4.0}
    assert counted_503s({}, after, contract) == {"fal_unavailable": 4}


def test_an_outcome_counter_is_read_through_the_apis_status_values():
    after = {"genchaos_generations_total{status=completed}": 9.0, "genchaos_generations_total{status=failed}": 1.0}
    assert counted_outcomes({}, after, REFERENCE) == {"completed": 9, "failed": 1}
    assert counted_outcomes({}, {}, REFERENCE) is None  # metrics never read: nothing to compare


def test_outcomes_counted_as_clients_saw_them_agree_and_others_disagree():
    obs = observation([completed(1.0), completed(2.0), failed(3.0)])
    obs.counted_outcomes = {"completed": 2, "failed": 1}
    assert telemetry_truth.miscounted_generations(obs).disagreements == 0
    obs.counted_outcomes = {"completed": 0, "failed": 0}  # the counter never moved
    assert telemetry_truth.miscounted_generations(obs).disagreements == 3
    obs.counted_outcomes = {"completed": 3, "failed": 0}  # a failure counted as a success
    assert telemetry_truth.miscounted_generations(obs).disagreements == 1
    obs.counted_outcomes = {"completed": 4, "failed": 2}  # each counted twice
    assert telemetry_truth.miscounted_generations(obs).disagreements == 3


def test_generations_the_harness_did_not_follow_may_be_counted():
    lost = completed(4.0)
    lost.final_status, lost.terminal_t = None, None
    obs = observation([completed(1.0), lost])
    obs.counted_outcomes = {"completed": 2, "failed": 0}
    assert telemetry_truth.miscounted_generations(obs).disagreements == 0


def _breaker_run(witness: list[BreakerSample]) -> int:
    obs = observation([completed(1.0), refused(5.0, "breaker_open"), refused(6.0, "breaker_open"), completed(9.0)],
                      fal_log=[submit(9.1, 200, "r9", "g9.0")], windows=[window(4.0, 7.0, "fal", "down")])
    obs.gauge_samples = witness
    return telemetry_truth.breaker_state_disagreements(obs).disagreements


def test_a_gauge_open_while_clients_were_refused_and_closed_after_agrees():
    assert _breaker_run([BreakerSample(t, {"fal": s}) for t, s in
                         ((4.5, "closed"), (5.5, "open"), (8.0, "half_open"), (10.5, "closed"))]) == 0


def test_a_gauge_never_set_or_stuck_open_disagrees():
    assert _breaker_run([BreakerSample(t, {}) for t in (4.5, 5.5, 8.0, 10.5)]) == 1  # never set
    assert _breaker_run([BreakerSample(t, {"fal": "closed"}) for t in (4.5, 5.5, 8.0, 10.5)]) == 1
    assert _breaker_run([BreakerSample(t, {"fal": "open"}) for t in (4.5, 5.5, 8.0, 10.5)]) == 1  # never closed


def test_readiness_that_follows_an_outage_agrees():
    obs = observation(windows=[window(5.0, 9.0, "database", "down")])
    obs.timings = {"health_refresh_interval_s": 0.5}
    obs.readiness_samples = [ReadinessSample(t / 10, not 55 <= t < 95) for t in range(0, 150)]
    assert telemetry_truth.readiness_disagreements(obs).disagreements == 0


def test_readiness_that_says_ready_through_an_outage_or_stays_unready_disagrees():
    obs = observation(windows=[window(5.0, 9.0, "database", "down")])
    obs.timings = {"health_refresh_interval_s": 0.5}
    obs.readiness_samples = [ReadinessSample(t / 10, True) for t in range(0, 150)]
    assert telemetry_truth.readiness_disagreements(obs).disagreements == 1
    obs.readiness_samples = [ReadinessSample(t / 10, t < 55) for t in range(0, 150)]
    # never ready again: the recovery it did not report, and its false alarms since
    assert telemetry_truth.readiness_disagreements(obs).disagreements == 2


def test_readiness_that_cries_wolf_with_nothing_broken_disagrees():
    obs = observation()
    obs.timings = {"health_refresh_interval_s": 0.5}
    obs.readiness_samples = [ReadinessSample(t / 10, t not in (40, 41)) for t in range(0, 100)]
    assert telemetry_truth.readiness_disagreements(obs).disagreements == 1


def test_fal_jobs_are_joined_to_their_requests_directly_or_by_a_link():
    direct, linked, lost = completed(1.0), completed(2.0), completed(3.0)
    for record in (direct, linked, lost):
        record.trace_id = f"{int(record.t):032x}"
    jobs = [submit(1.1, 200, "r1", "g1.0"), submit(2.1, 200, "r2", "g2.0"), submit(3.1, 200, "r3", "g3.0")]
    worker_trace = "f" * 32
    jobs[0]["traceparent"] = f"00-{direct.trace_id}-{'1' * 16}-01"
    jobs[1]["traceparent"] = f"00-{worker_trace}-{'2' * 16}-01"
    jobs[2]["traceparent"] = f"00-{'e' * 32}-{'3' * 16}-01"
    obs = observation([direct, linked, lost], fal_log=jobs)
    obs.trace_joins = {worker_trace: sorted([worker_trace, linked.trace_id]), "e" * 32: ["e" * 32]}
    comparison = telemetry_truth.unjoined_traces(obs)
    assert comparison.disagreements == 1
    assert "2 of 3" in comparison.service_said


def test_what_a_contract_cannot_show_reads_unmeasured_in_the_rows():
    obs = observation()
    obs.unmeasurable = {"readiness_disagreements": "the contract claims no readiness endpoint"}
    rows = {row["aspect"]: row for row in telemetry_truth.rows(obs, telemetry_truth.compare(obs))}
    assert rows["readiness"]["status"] == "unmeasured"
    assert "claims no readiness endpoint" in rows["readiness"]["service_said"]
    assert rows["traces joined to requests"]["service_said"] == "unmeasured: no traces were read"


def test_a_503_whose_trace_names_its_cause_agrees_and_one_naming_another_or_none_does_not():
    named, other, silent = refused(1.0, "fal_unavailable"), refused(2.0, "fal_unavailable"), refused(3.0, "fal_unavailable")
    obs = observation([named, other, silent, completed(4.0)])
    obs.span_causes = {named.trace_id: ["fal_unavailable"], other.trace_id: ["database_unavailable"], silent.trace_id: []}
    comparison = telemetry_truth.unexplained_503_spans(obs)
    assert comparison.disagreements == 2
    assert "spans named nothing" in comparison.service_said
    obs.span_causes = None  # no traces read: nothing to compare
    assert telemetry_truth.unexplained_503_spans(obs) is None


def test_a_duration_histogram_in_the_wrong_unit_or_never_observed_disagrees():
    obs = observation([completed(1.0, generation_s=2.0), completed(2.0, generation_s=3.0)])
    obs.counted_durations = (2, 4.6)  # a little less than the clients' 5.0 s: their POST and poll are in theirs
    assert telemetry_truth.misreported_durations(obs).disagreements == 0
    obs.counted_durations = (2, 4600.0)  # milliseconds
    assert telemetry_truth.misreported_durations(obs).disagreements == 1
    obs.counted_durations = (2, 0.002)  # observed when accepted, not when done
    assert telemetry_truth.misreported_durations(obs).disagreements == 1
    obs.counted_durations = (0, 0.0)  # never observed
    assert telemetry_truth.misreported_durations(obs).disagreements == 1
