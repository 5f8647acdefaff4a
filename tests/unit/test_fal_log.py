"""FAL's request log as ground truth: the breaker's threshold and probe, stuck jobs the service
abandoned or not, retry gaps and injected errors, each judged next to the case that flips it."""

from __future__ import annotations

import pytest

from chaos.judge.fal_log import (
    abandoned_jobs,
    backoff_grows,
    breaker_from_fal,
    faulted_calls,
    opened_on_failure_rate,
    retry_allowance,
    retry_delay_spread,
    retry_gaps,
    stuck_jobs,
    submissions_by_generation,
    submits,
    unabandoned,
)
from chaos.judge.measures import run_metrics
from tests.unit.judge_support import breaker, cancel, completed, observation, poll, result, submit, window

FAILURE_TIMES = [1.0 + 0.2 * i for i in range(12)]  # the n-th failed submit reaches FAL at FAILURE_TIMES[n - 1]


def failing_submits(count: int = 12) -> list[dict]:
    return [submit(t, 500, None, f"g{i}") for i, t in enumerate(FAILURE_TIMES[:count])]


def seen_open_after(failures: int) -> list:
    """Samples: closed just after the (failures - 1)-th failed submit, open just after the failures-th."""
    return breaker([(0.5, "closed"), (FAILURE_TIMES[failures - 2] + 0.05, "closed"),
                    (FAILURE_TIMES[failures - 1] + 0.05, "open")])


def burst_then_probe(failures: int, probe_at: float = 9.0) -> list[dict]:
    """``failures`` failed submits 0.2 s apart from 1.0 s, then quiet until a successful probe."""
    return [*failing_submits(failures), submit(probe_at, 200, "r-probe", "g-probe")]


# --- the failure-rate rule ----------------------------------------------------------------------

RATE_RULE = {"window_s": 10.0, "threshold": 0.5, "min_calls": 10, "quiet_s": 1.0, "concurrency": 4}


def answered(pattern: str, start: float = 1.0, gap: float = 0.3) -> list[dict]:
    """Submits ``gap`` apart from ``start``: "F" failed (500), "." accepted, " " a pause of one gap."""
    entries = []
    for index, mark in enumerate(pattern):
        if mark != " ":
            failed = mark == "F"
            entries.append(submit(start + index * gap, 500 if failed else 200,
                                  None if failed else f"r{index}", f"g{index}"))
    return entries


def rate_rule(entries: list[dict], load_ended: float = 30.0) -> bool | None:
    return opened_on_failure_rate(entries, load_ended=load_ended, **RATE_RULE)


def test_fal_going_quiet_once_its_answers_cross_the_failure_rate_is_the_rate_rule_opening():
    # ten answers, seven failed: the share crosses one half at the tenth; then a pause, then the probe
    assert rate_rule([*answered(".FFF.FFF.F"), *answered(".", start=8.0)]) is True


def test_fal_still_called_long_after_its_answers_crossed_the_rate_means_the_rule_did_not_open():
    assert rate_rule(answered(".FFF" * 12)) is False


def test_more_calls_after_the_crossing_than_the_workers_had_in_flight_is_too_late():
    assert rate_rule(answered(".FFF.FFF.F" + ".FFF.F" + "    " * 2 + ".")) is False
    assert rate_rule(answered(".FFF.FFF.F" + ".FFF" + "    " * 2 + ".")) is True


def test_fal_going_quiet_only_because_the_load_stopped_is_no_opening():
    entries = answered(".FFF.FFF.F" + ".FFF.FFF")
    assert rate_rule(entries, load_ended=entries[-1]["t"]) is False


def test_answers_that_never_cross_the_rate_leave_the_rule_unjudged():
    assert rate_rule(answered("..F" * 10)) is None


def test_a_breaker_that_opened_on_consecutive_failures_first_leaves_the_rule_unjudged():
    assert rate_rule([*answered("..FFFFF"), *answered(".", start=8.0)]) is None


# --- the retry budget ----------------------------------------------------------------------------

BUDGET = {"retry_budget_ratio": 0.2, "retry_budget_min_per_s": 1.0, "retry_budget_ttl_s": 10.0}


def test_within_one_window_a_budget_allows_its_ratio_of_first_attempts_plus_one_reserve():
    six_seconds = [submit(0.5, 500, None, "g0"), submit(6.5, 500, None, "g1")]
    assert retry_allowance(six_seconds, 60, 0.2, 1.0, 10.0) == pytest.approx(0.2 * 60 + 10)


def test_over_two_windows_a_first_attempt_may_pay_twice_and_each_window_brings_its_reserve():
    fifteen_seconds = [submit(0.5, 500, None, "g0"), submit(15.5, 500, None, "g1")]
    assert retry_allowance(fifteen_seconds, 60, 0.2, 1.0, 10.0) == pytest.approx(2 * 0.2 * 60 + 2 * 10)


def budget_run(submits_per_generation: int, generations: int = 10, job_for: int = 0) -> dict:
    """``generations`` each submitted that often (0.1 s apart); the first ``job_for`` of them got a job."""
    log = [submit(1.0 + g * 0.3 + n * 0.1, 200 if g < job_for and n == 0 else 500, f"r{g}" if g < job_for else None,
                  f"g{g}") for g in range(generations) for n in range(submits_per_generation)]
    obs = observation(fal_log=log)
    obs.timings = dict(BUDGET)
    return run_metrics(obs)


def test_every_generation_retried_twice_spends_more_than_the_budget_allows():
    judged = budget_run(3)
    assert (judged["fal_retries"], judged["retry_allowance"], judged["retries_within_budget"]) == (20, 12.0, False)


def test_retries_within_the_ratio_and_reserve_are_within_budget():
    judged = budget_run(2)
    assert (judged["fal_retries"], judged["retry_allowance"], judged["retries_within_budget"]) == (10, 12.0, True)


def test_a_generation_fal_took_a_job_for_earns_its_download_upload_and_signed_url_too():
    assert budget_run(3, job_for=10)["retry_allowance"] == pytest.approx(0.2 * 40 + 10)


def test_a_service_that_publishes_no_budget_leaves_it_unjudged():
    assert run_metrics(observation(fal_log=[submit(1.0, 500, None, "g0")]))["retries_within_budget"] is None


# --- the breaker's threshold -------------------------------------------------------------------

def test_a_breaker_that_opens_on_the_fifth_failure_opened_at_threshold_five():
    judged = breaker_from_fal(observation(fal_log=burst_then_probe(5), samples=seen_open_after(5)), 2.0)
    assert (judged.failures_to_open, judged.failures_in_burst) == (5, 5)
    assert judged.opened_at_threshold(5, concurrency=4) is True


def test_calls_in_flight_when_it_opened_may_add_fewer_than_the_workers():
    judged = breaker_from_fal(observation(fal_log=burst_then_probe(8), samples=seen_open_after(5)), 2.0)
    assert (judged.failures_to_open, judged.failures_in_burst) == (5, 8)
    assert judged.opened_at_threshold(5, concurrency=4) is True
    assert judged.opened_at_threshold(5, concurrency=3) is False


def test_a_breaker_that_opens_only_after_ten_failures_did_not_open_at_threshold_five():
    judged = breaker_from_fal(observation(fal_log=burst_then_probe(10), samples=seen_open_after(10)), 2.0)
    assert (judged.failures_to_open, judged.failures_in_burst) == (10, 10)
    assert judged.opened_at_threshold(5, concurrency=4) is False


def test_a_breaker_that_opens_after_three_failures_did_not_open_at_threshold_five():
    judged = breaker_from_fal(observation(fal_log=burst_then_probe(3), samples=seen_open_after(3)), 2.0)
    assert judged.failures_to_open == 3
    assert judged.opened_at_threshold(5, concurrency=4) is False


def test_a_successful_submit_resets_the_run_of_failures():
    log = burst_then_probe(7)
    log[2] = submit(FAILURE_TIMES[2], 200, "r-ok", "g2")  # the third call succeeded
    judged = breaker_from_fal(observation(fal_log=log, samples=seen_open_after(5)), 2.0)
    assert judged.failures_to_open == 2  # the 4th and 5th
    assert judged.opened_at_threshold(5, concurrency=4) is False


def test_only_server_errors_count_as_failures():
    log = [submit(t, 429, None, f"g{i}") for i, t in enumerate(FAILURE_TIMES)]
    judged = breaker_from_fal(observation(fal_log=log, samples=seen_open_after(5)), 2.0)
    assert judged.failures_to_open == 0


def test_a_breaker_never_seen_open_is_not_judged():
    judged = breaker_from_fal(observation(fal_log=failing_submits(), samples=breaker([(1.0, "closed"),
                                                                                       (5.0, "closed")])), 2.0)
    assert judged.opened_at is None
    assert judged.opened_at_threshold(5, concurrency=4) is None
    assert judged.probed_after_window(2.0, 0.25) is None
    assert judged.open_to_probe_s() is None


# --- the probe after the recovery window -------------------------------------------------------

PROBE_SAMPLES = breaker([(4.9, "closed"), (5.0, "open"), (8.0, "half_open")])


def probe_run(probe_at: float | None) -> object:
    log = [submit(t, 500, None, f"g{i}") for i, t in enumerate((3.0, 3.5, 4.0, 4.5, 4.95))]
    if probe_at is not None:
        log.append(submit(probe_at, 200, "r-probe", "g-probe"))
    return breaker_from_fal(observation(fal_log=log, samples=PROBE_SAMPLES), 2.0)


def test_a_probe_two_seconds_after_opening_honours_a_two_second_window():
    judged = probe_run(7.0)
    assert judged.probe_at == 7.0
    assert judged.open_to_probe_s() == pytest.approx(2.0)
    assert judged.probed_after_window(2.0, arrival_gap_s=0.25) is True


def test_a_probe_half_a_second_after_opening_is_too_early():
    judged = probe_run(5.5)
    assert judged.probed_after_window(2.0, arrival_gap_s=0.25) is False


def test_no_probe_at_all_is_not_a_probe_after_the_window():
    judged = probe_run(None)
    assert judged.probe_at is None
    assert judged.probed_after_window(2.0, arrival_gap_s=0.25) is False


def test_a_probe_long_after_the_window_is_too_late():
    assert probe_run(12.0).probed_after_window(2.0, arrival_gap_s=0.25) is False


# --- stuck jobs ----------------------------------------------------------------------------------

STUCK_WINDOW = window(0.0, 10.0, "fal", "stuck_rate", attributes={"stuck_rate": 1.0})


def polled_until(last: float, request_id: str = "r1", generation_id: str = "g1") -> list[dict]:
    """A job created at 1.0 and polled every 0.5 s until ``last``, its result never fetched."""
    polls, t = [], 1.5
    while t < last:
        polls.append(poll(t, request_id))
        t += 0.5
    return [submit(1.0, 200, request_id, generation_id), *polls, poll(last, request_id)]


def test_a_stuck_job_polled_a_little_past_its_timeout_was_abandoned():
    jobs = stuck_jobs(observation(windows=[STUCK_WINDOW], fal_log=polled_until(4.2)))
    assert [(j.request_id, j.generation_id, j.submitted) for j in jobs] == [("r1", "g1", 1.0)]
    assert jobs[0].last_call - jobs[0].submitted == pytest.approx(3.2)
    assert unabandoned(jobs, attempt_timeout_s=3.0) == []


def test_a_stuck_job_polled_for_nine_seconds_was_not_abandoned():
    jobs = stuck_jobs(observation(windows=[STUCK_WINDOW], fal_log=polled_until(10.0)))
    assert unabandoned(jobs, attempt_timeout_s=3.0) == jobs
    assert len(jobs) == 1


def test_a_cancel_is_the_last_call_about_a_stuck_job():
    log = [*polled_until(3.0), cancel(4.1, "r1")]
    jobs = stuck_jobs(observation(windows=[STUCK_WINDOW], fal_log=log))
    assert jobs[0].last_call == 4.1
    assert unabandoned(jobs, attempt_timeout_s=3.0) == []


def test_a_stuck_job_resubmitted_before_its_timeout_was_given_up_too_early():
    log = [*polled_until(1.8), submit(2.0, 200, "r2", "g1"), poll(2.5, "r2"), result(3.0, "r2")]
    jobs = stuck_jobs(observation(windows=[STUCK_WINDOW], fal_log=log))
    assert [(j.request_id, j.resubmitted) for j in jobs] == [("r1", 2.0)]
    assert unabandoned(jobs, attempt_timeout_s=3.0) == jobs


def test_a_stuck_job_resubmitted_after_its_timeout_was_abandoned_in_time():
    log = [*polled_until(4.0), submit(4.3, 200, "r2", "g1"), poll(4.8, "r2"), result(5.0, "r2")]
    jobs = stuck_jobs(observation(windows=[STUCK_WINDOW], fal_log=log))
    assert [(j.request_id, j.resubmitted) for j in jobs] == [("r1", 4.3)]
    assert unabandoned(jobs, attempt_timeout_s=3.0) == []


def test_a_job_whose_result_was_fetched_is_not_stuck():
    log = [*polled_until(2.0), result(2.2, "r1")]
    assert stuck_jobs(observation(windows=[STUCK_WINDOW], fal_log=log)) == []


def test_a_job_whose_result_fetch_failed_is_still_stuck():
    log = [*polled_until(2.0), result(2.2, "r1", status=500)]
    assert len(stuck_jobs(observation(windows=[STUCK_WINDOW], fal_log=log))) == 1


def test_only_jobs_created_while_a_stuck_fault_was_on_are_stuck():
    late = window(5.0, 10.0, "fal", "stuck_rate")
    assert stuck_jobs(observation(windows=[late], fal_log=polled_until(4.0))) == []
    other = window(0.0, 10.0, "fal", "latency_s", attributes={"latency_s": 1.0})
    assert stuck_jobs(observation(windows=[other], fal_log=polled_until(4.0))) == []
    combined = window(0.0, 10.0, "fal", "latency_s+stuck_rate")
    assert len(stuck_jobs(observation(windows=[combined], fal_log=polled_until(4.0)))) == 1


def test_a_refused_submission_is_no_stuck_job():
    log = [submit(1.0, 500, None, "g1"), submit(1.2, 503, "r-refused", "g1")]
    assert stuck_jobs(observation(windows=[STUCK_WINDOW], fal_log=log)) == []


# --- retries and injected errors ---------------------------------------------------------------

def test_retry_gaps_average_the_nth_pause_over_generations():
    log = [submit(0.0, 500, None, "a"), submit(1.0, 500, None, "a"), submit(3.0, 200, "ra", "a"),
           submit(10.0, 500, None, "b"), submit(12.0, 200, "rb", "b"),
           submit(20.0, 200, "rc", "c"), submit(21.0, 200, "r-none", None)]
    by_generation = submissions_by_generation(submits(observation(fal_log=log)))
    assert sorted(by_generation) == ["a", "b", "c"]
    assert retry_gaps(by_generation) == [pytest.approx(1.5), pytest.approx(2.0)]


def test_retry_gaps_follow_arrival_time_not_log_order():
    log = [submit(3.0, 200, "ra", "a"), submit(0.0, 500, None, "a"), submit(1.0, 500, None, "a")]
    assert retry_gaps(submissions_by_generation(submits(observation(fal_log=log)))) == [pytest.approx(1.0),
                                                                                pytest.approx(2.0)]


def test_no_retries_means_no_gaps():
    log = [submit(0.0, 200, "ra", "a"), submit(1.0, 200, "rb", "b")]
    assert retry_gaps(submissions_by_generation(submits(observation(fal_log=log)))) == []


def test_faulted_calls_count_injected_errors_of_every_kind_of_call():
    log = [submit(0.0, 429, None, "a"), submit(0.1, 500, None, "a"), poll(0.2, "r", status=502),
           poll(0.3, "r", status=503), result(0.4, "r", status=504),
           submit(0.5, 200, "r", "a"), poll(0.6, "r", status=202), result(0.7, "r"), submit(0.8, 422, None, "b")]
    assert faulted_calls(observation(fal_log=log)) == 5
    assert faulted_calls(observation(fal_log=log[5:])) == 0


# --- the half-open probe limit and the backoff's shape --------------------------------------------

def half_open_spell(calls: int) -> list[dict]:
    """Five failures, quiet, then a half-open spell of ``calls`` failed submits, quiet again, a success."""
    spell = [submit(7.0 + 0.05 * i, 500, None, f"h{i}") for i in range(calls)]
    return [*failing_submits(5), *spell, submit(10.0, 200, "r-ok", "g-ok")]


def test_one_failed_probe_per_half_open_spell_is_within_a_limit_of_one():
    judged = breaker_from_fal(observation(fal_log=half_open_spell(1), samples=seen_open_after(5)), 2.0)
    assert judged.probe_at == 7.0 and judged.probe_calls == 1


def test_a_half_open_breaker_letting_four_calls_through_is_counted():
    judged = breaker_from_fal(observation(fal_log=half_open_spell(4), samples=seen_open_after(5)), 2.0)
    assert judged.probe_calls == 4


def test_calls_crowding_into_a_later_half_open_spell_are_counted():
    """The first spell found one caller waiting, the second found three: the limit was not kept."""
    second = [submit(9.0 + 0.05 * i, 500, None, f"k{i}") for i in range(3)]
    log = [*failing_submits(5), submit(7.0, 500, None, "h0"), *second, submit(11.0, 200, "r-ok", "g-ok")]
    judged = breaker_from_fal(observation(fal_log=log, samples=seen_open_after(5)), 2.0)
    assert judged.probe_at == 7.0 and judged.probe_calls == 3


def test_traffic_after_the_breaker_closed_is_not_a_half_open_spell():
    after = [submit(12.0 + 0.1 * i, 500 if i % 2 else 200, None, f"n{i}") for i in range(6)]
    log = [*half_open_spell(1), *after]
    judged = breaker_from_fal(observation(fal_log=log, samples=seen_open_after(5)), 2.0)
    assert judged.probe_calls == 1


def test_a_successful_probe_says_nothing_about_the_limit():
    judged = breaker_from_fal(observation(fal_log=burst_then_probe(5), samples=seen_open_after(5)), 2.0)
    assert judged.probe_calls is None


@pytest.mark.parametrize("gaps, grows", [
    ([0.5, 1.1], True),     # jittered doubling around a 1 s base
    ([1.0, 1.0], False),    # a fixed delay
    ([0.02, 0.05], False),  # delays in milliseconds: round trips, not backoff
    ([0.5], None),          # one retry says nothing about growth
])
def test_backoff_must_be_a_real_delay_that_grows(gaps, grows):
    assert backoff_grows(gaps, base_delay_s=1.0) is grows


def first_retries(delays: list[float]) -> dict[str, list[dict]]:
    """Generations each failing once at t=1 and retried after its delay, grouped as FAL saw them."""
    log = [entry for n, delay in enumerate(delays)
           for entry in (submit(1.0, 500, None, f"g{n}"), submit(1.0 + delay, 500, None, f"g{n}"))]
    return submissions_by_generation(submits(observation(fal_log=log)))


def test_jittered_retry_delays_spread_and_retries_in_step_do_not():
    jittered = retry_delay_spread(first_retries([0.05 + 0.1 * i for i in range(10)]))  # spread below 1 s
    in_step = retry_delay_spread(first_retries([1.0 + 0.01 * (i % 3) for i in range(10)]))  # 1 s, scheduling noise
    assert jittered == pytest.approx(0.57, abs=0.01) and in_step < 0.01
    assert retry_delay_spread(first_retries([0.1 * i + 0.05 for i in range(9)])) is None  # too few to say


def test_a_synchronous_run_is_a_job_request_but_never_an_abandoned_job():
    run = {"t": 1.0, "method": "POST", "kind": "run", "status": 200, "request_id": "r1", "generation_id": "g1",
           "path": "/fal-ai/flux/dev"}
    obs = observation([completed(0.9, generation_id="g1")], fal_log=[run, submit(2.0, 200, "r2", "g1")])
    assert [e["request_id"] for e in submits(obs)] == ["r1", "r2"]
    assert abandoned_jobs(obs) == ["r2"]
