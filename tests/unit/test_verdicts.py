"""Verdicts and claims on synthetic observations: each kind of check passes on good behaviour and
turns to fail (or inconclusive) when the thing it guards is broken or unproven."""

from __future__ import annotations

import dataclasses

import pytest

from chaos.judge.claims import audit
from chaos.judge.measures import percentile
from chaos.judge.verdicts import judge, overall_verdict
from chaos.run.observations import BreakerSample, FaultWindow, Observation, RequestRecord
from chaos.scenarios.model import Scenario
from tests.unit.judge_support import REFERENCE_API, sentence


def ok(t: float, latency: float = 0.4) -> RequestRecord:
    return RequestRecord(t=t, status=202, latency_s=0.01, trace_id=f"{t}", generation_id=f"g{t}",
                         final_status="completed", terminal_t=t + latency)


def refused(t: float, retry_after: str | None = "1", reason: str = "fal_unavailable",
            detail: str | None = None) -> RequestRecord:
    record = RequestRecord(t=t, status=503, latency_s=0.01, trace_id=f"{t}", retry_after=retry_after,
                           reason_503=reason, detail=detail if detail is not None else sentence(reason))
    record.causes = REFERENCE_API.causes(record)
    return record


def scenario(checks: list[dict], faults: list[dict] | None = None, **extra) -> Scenario:
    return Scenario.model_validate({"name": "synthetic", "description": "synthetic",
                                    "load": {"rate_per_s": 10, "duration_s": 10},
                                    "faults": faults or [], "checks": checks, **extra})


LOAD_FOR_99_PERCENT = {"rate_per_s": 40, "duration_s": 10}  # a 99% bound can hold only on 381 requests or more
FAST_TIMINGS = {"breaker_failure_threshold": 5.0, "breaker_recovery_timeout_s": 2.0, "retry_attempts": 3.0,
                "retry_base_delay_s": 0.2, "unavailable_retry_after_s": 1.0,
                "fal_attempt_timeout_s": 3.0}


def observation(requests: list[RequestRecord], *, windows=((2.0, 5.0),), samples=(), fal_log=(),
                profile: str = "hardened", proxy_bytes: float | None = 0.0) -> Observation:
    return Observation(scenario="synthetic", profile=profile, timing="fast", started_at=0.0, duration_s=10.0,
                       requests=list(requests), breaker_samples=list(samples),
                       fault_windows=[FaultWindow(s, e, "fal proxy down", "fal", "down", "fal", {}, proxy_bytes)
                                      for s, e in windows],
                       fal_log=list(fal_log), timings=dict(FAST_TIMINGS), settle_s=0.5)


def breaker(timeline: list[tuple[float, str]]) -> list[BreakerSample]:
    return [BreakerSample(t, {"fal": state}) for t, state in timeline]


DOWN = [{"at": 2, "for": 3, "down": "fal"}]
# Healthy before 2 s, refused during the fault, healthy again from 5.5 s.
HEALTHY_RUN = ([ok(t / 10) for t in range(0, 15)] + [refused(2 + t / 4) for t in range(12)]
               + [ok(5.5 + t / 10) for t in range(40)])
OPEN_THEN_CLOSED = breaker([(1.0, "closed"), (2.6, "open"), (4.6, "half_open"), (5.2, "closed")])


def checks_of(result) -> dict:
    return {c.name: c for c in result.checks}


def test_a_healthy_fault_run_passes_every_kind_of_check():
    s = scenario([{"metric": "success_rate", "phase": "before", "min": 0.7},
                  {"metric": "rate_503", "phase": "during", "min": 0.7},
                  {"metric": "misattributed_503", "max": 0},
                  {"metric": "breaker_opened", "equals": True},
                  {"metric": "recovery_s", "max": 2},
                  {"metric": "lost_generations", "max": 0},
                  {"metric": "missing_retry_after", "max": 0},
                  {"metric": "wrong_503_detail", "max": 0},
                  {"metric": "success_rate", "phase": "after", "settle_s": 0.5, "min": 0.9}], DOWN)
    result = judge(s, observation(HEALTHY_RUN, samples=OPEN_THEN_CLOSED))
    assert result.verdict == "pass", [c for c in result.checks if not c.passed]
    assert result.outcome == "passed"
    assert result.metrics["breaker_opened"] is True
    assert abs(result.metrics["time_to_open_s"] - 0.6) < 1e-9
    # Breakers closed at 5.2 s, and the first request sent after the fault (5.5 s) completed: 0.5 s.
    assert abs(result.metrics["recovery_s"] - 0.5) < 1e-9
    assert result.metrics["reasons_503"] == {"fal_unavailable": 12}
    before = checks_of(result)["success_rate[before]"]
    assert before.status == "held" and before.n == 15 and before.interval[0] >= 0.7


def test_a_fault_with_no_visible_effect_makes_the_run_invalid_not_a_pass():
    untouched = [ok(t / 10) for t in range(100)]  # the "down" proxy kept serving: every request succeeded
    s = scenario([{"metric": "lost_generations", "max": 0}], DOWN)
    result = judge(s, observation(untouched, proxy_bytes=5000.0))
    assert result.verdict == "fail" and result.outcome == "invalid"
    effect = result.checks[0]
    assert effect.name.startswith("fault had an effect") and not effect.passed


def test_too_few_requests_in_a_phase_are_inconclusive_never_held():
    # the load promises about 20 requests before the fault (enough for a bound of 0.8); only 6 came
    s = scenario([{"metric": "success_rate", "phase": "before", "min": 0.8}], DOWN,
                 load={"rate_per_s": 20, "duration_s": 10})
    few = [ok(t / 4) for t in range(6)] + [refused(2 + t / 4) for t in range(12)]
    result = judge(s, observation(few))
    check = checks_of(result)["success_rate[before]"]
    assert check.status == "inconclusive" and not check.passed and check.n == 6
    assert check.n_needed and check.n_needed > 6
    assert result.verdict == "fail" and result.outcome == "inconclusive"


def test_a_503_naming_the_wrong_dependency_is_misattributed():
    wrong = [ok(t / 10) for t in range(15)] + [refused(2 + t / 4, reason="database_unavailable") for t in range(12)]
    s = scenario([{"metric": "misattributed_503", "max": 0}], DOWN)
    result = judge(s, observation(wrong))
    assert result.verdict == "fail" and result.metrics["misattributed_503"] == 12
    claim = next(c for c in audit([result]) if c.key == "specific_503s")
    assert claim.held is False and "12 not naming the dependency" in claim.evidence


def test_a_breaker_that_never_opens_fails_the_breaker_check_and_claim():
    s = scenario([{"metric": "breaker_opened", "equals": True}], DOWN, evidence=["breaker_opens"])
    result = judge(s, observation(HEALTHY_RUN, samples=breaker([(t / 10, "closed") for t in range(100)])))
    assert result.verdict == "fail"
    assert checks_of(result)["breaker_opened"].observed is False
    claim = next(c for c in audit([result]) if c.key == "breaker_opens")
    assert not claim.held and "opened=False" in claim.evidence


def failed_submits(times: list[float]) -> list[dict]:
    return [{"t": t, "kind": "submit", "status": 500, "generation_id": f"g{i}"} for i, t in enumerate(times)]


def test_breaker_threshold_is_judged_from_the_failures_fal_saw():
    s = scenario([{"metric": "breaker_opened_at_threshold", "equals": True}], DOWN, evidence=["breaker_opens"])
    samples = breaker([(2.5, "closed"), (2.6, "open"), (4.6, "half_open"), (5.2, "closed")])
    on_time = judge(s, observation(HEALTHY_RUN, samples=samples, fal_log=failed_submits([2.0, 2.1, 2.2, 2.3, 2.55])))
    late = judge(s, observation(HEALTHY_RUN, samples=samples, fal_log=failed_submits([2.0 + i / 50 for i in range(12)])))
    assert late.metrics["failures_in_burst"] == 12
    assert on_time.verdict == "pass" and late.verdict == "fail"
    assert late.metrics["failures_to_open"] == 12
    assert [c.held for c in audit([on_time]) if c.key == "breaker_opens"] == [True]
    assert [c.held for c in audit([late]) if c.key == "breaker_opens"] == [False]


def test_a_slow_recovery_fails_the_recovery_check():
    slow = breaker([(2.6, "open"), (9.0, "closed")])
    s = scenario([{"metric": "recovery_s", "max": 2}], DOWN)
    result = judge(s, observation(HEALTHY_RUN, samples=slow))
    assert result.verdict == "fail"
    assert checks_of(result)["recovery_s"].observed == 4.0  # closed at 9 s, fault ended at 5 s


def test_a_breaker_that_never_closes_has_no_recovery_and_fails():
    s = scenario([{"metric": "recovery_s", "max": 30}], DOWN)
    result = judge(s, observation(HEALTHY_RUN, samples=breaker([(2.6, "open"), (9.9, "open")])))
    assert checks_of(result)["recovery_s"].observed == "none" and result.verdict == "fail"


def test_a_503_without_retry_after_or_sentence_fails_checks_and_claim():
    requests = [ok(0.5), refused(2.5, retry_after=None), refused(3.0, detail="Service Unavailable"),
                *[ok(6 + t / 10) for t in range(5)]]
    s = scenario([{"metric": "missing_retry_after", "max": 0}, {"metric": "wrong_503_detail", "max": 0}], DOWN)
    result = judge(s, observation(requests))
    found = checks_of(result)
    assert found["missing_retry_after"].observed == 1 and not found["missing_retry_after"].passed
    assert found["wrong_503_detail"].observed == 1 and not found["wrong_503_detail"].passed
    claim = next(c for c in audit([result]) if c.key == "specific_503s")
    assert not claim.held and "1 without a whole-seconds Retry-After" in claim.evidence


@pytest.mark.parametrize("retry_after, out_of_range", [
    ("1", 0), ("2", 0),  # the outage's own retry-after; an open breaker's remaining window
    ("0", 1),            # retry at once, into the outage
    ("3", 1),            # longer than any published wait (a 2 s window, 1 s for an outage)
    ("1000", 1),         # milliseconds
])
def test_a_retry_after_outside_the_published_waits_fails_check_and_claim(retry_after, out_of_range):
    requests = [ok(0.5), refused(2.5, retry_after=retry_after), *[ok(6 + t / 10) for t in range(5)]]
    result = judge(scenario([{"metric": "retry_after_out_of_range", "max": 0}], DOWN), observation(requests))
    assert checks_of(result)["retry_after_out_of_range"].observed == out_of_range
    claim = next(c for c in audit([result]) if c.key == "specific_503s")
    assert bool(claim.held) is (out_of_range == 0), claim.evidence
    assert (f"{out_of_range} with a Retry-After outside" in claim.evidence) is bool(out_of_range)


def test_a_failed_rate_500_names_the_requests_behind_it():
    """What came back, or why nothing did: a 500 and a POST the connection dropped read differently."""
    no_answer = RequestRecord(t=2.5, status=None, latency_s=0.01, trace_id="n",
                              detail="RemoteProtocolError: Server disconnected without sending a response.")
    error = RequestRecord(t=3.0, status=500, latency_s=0.01, trace_id="e", detail="Internal Server Error")
    requests = [ok(0.5), no_answer, error, *[ok(6 + t / 10) for t in range(5)]]
    check = checks_of(judge(scenario([{"metric": "rate_500", "max": 0}], DOWN), observation(requests)))["rate_500"]
    assert not check.passed
    assert "at 2.5s: no answer (RemoteProtocolError: Server disconnected" in check.observed
    assert "at 3.0s: 500 (Internal Server Error)" in check.observed
    clean = checks_of(judge(scenario([{"metric": "rate_500", "max": 0}], DOWN), observation([ok(0.5 + t) for t in range(8)])))
    assert clean["rate_500"].passed and "e.g." not in clean["rate_500"].observed


def test_a_generation_never_terminal_counts_as_lost():
    dropped = RequestRecord(t=1.0, status=202, latency_s=0.01, trace_id="x", generation_id="g-dropped")
    s = scenario([{"metric": "lost_generations", "max": 0}])
    result = judge(s, observation([ok(0.5 + t / 10) for t in range(5)] + [dropped], windows=()))
    assert result.verdict == "fail" and result.metrics["lost_generations"] == 1


def test_phase_scoping_keeps_fault_time_out_of_the_steady_state():
    s = scenario([{"metric": "success_rate", "phase": "before", "min": 0.7},
                  {"metric": "success_rate", "min": 0.9}], DOWN)
    found = checks_of(judge(s, observation(HEALTHY_RUN)))
    assert found["success_rate[before]"].passed
    assert found["success_rate"].status == "not held"


def test_a_sliding_window_catches_a_dip_the_average_hides():
    requests = [ok(t / 50) for t in range(500)]
    for record in requests[200:250]:  # one bad second out of ten
        record.final_status, record.terminal_t = "failed", record.t + 0.1
    s = scenario([{"metric": "success_rate", "min": 0.85},
                  {"metric": "success_rate", "window_s": 1, "min": 0.85, "min_requests": 5}])
    found = checks_of(judge(s, observation(requests, windows=())))
    assert found["success_rate"].passed
    window = found["success_rate[every 1s]"]
    assert window.status == "not held" and window.observed.startswith("0.0")


def test_checks_can_be_limited_to_one_profile():
    s = scenario([{"metric": "success_rate", "min": 0.99, "profiles": ["hardened"]}], load=LOAD_FOR_99_PERCENT)
    bad = observation([refused(1.0)], windows=(), profile="as_written")
    assert judge(s, bad).checks == []


def fal_submissions(delays: list[float], generations: int = 4) -> list[dict]:
    log = []
    for g in range(generations):
        t = float(g)
        log.append({"t": t, "kind": "submit", "status": 500, "generation_id": f"g{g}"})
        for delay in delays:
            t += delay
            log.append({"t": t, "kind": "submit", "status": 500, "generation_id": f"g{g}"})
    return log


def test_retry_claim_holds_for_exponential_backoff_and_fails_for_a_fixed_delay():
    s = scenario([{"metric": "max_fal_submissions_per_generation", "equals": 3}], evidence=["retries"])
    exponential = judge(s, observation([ok(0)], windows=(), fal_log=fal_submissions([0.2, 0.4])))
    fixed = judge(s, observation([ok(0)], windows=(), fal_log=fal_submissions([0.2, 0.2]), profile="as_written"))
    assert exponential.verdict == "pass" and fixed.verdict == "pass"
    claims = {c.profile: c for c in audit([exponential, fixed]) if c.key == "retries"}
    assert claims["hardened"].held
    assert not claims["as_written"].held and "x1.00" in claims["as_written"].evidence
    assert exponential.metrics["retry_gaps_s"] == pytest.approx([0.2, 0.4])


def test_retries_set_to_one_fail_the_attempts_check_and_leave_the_claim_unmeasured():
    s = scenario([{"metric": "max_fal_submissions_per_generation", "equals": 3}], evidence=["retries"])
    once = judge(s, observation([ok(0)], windows=(), fal_log=fal_submissions([])))
    assert once.verdict == "fail" and checks_of(once)["max_fal_submissions_per_generation"].observed == 1
    claim = next(c for c in audit([once]) if c.key == "retries")
    assert not claim.held and not claim.measured


def test_duplicate_fal_jobs_count_extra_accepted_submissions_of_one_generation():
    log = [{"t": 0.1, "kind": "submit", "status": 200, "generation_id": "g1"},
           {"t": 3.2, "kind": "submit", "status": 200, "generation_id": "g1"},
           {"t": 0.5, "kind": "submit", "status": 200, "generation_id": "g2"}]
    s = scenario([{"metric": "duplicate_fal_jobs", "max": 0}])
    result = judge(s, observation([ok(0), ok(0.4)], windows=(), fal_log=log))
    assert result.metrics["duplicate_fal_jobs"] == 1
    assert result.verdict == "fail" and result.metrics["duplicate_fal_jobs"] == 1
    assert result.metrics["fal_submissions_per_generation"] == 1.5


def test_steady_state_and_auth_claims():
    s = scenario([{"metric": "requests", "min": 1}], DOWN, settle_s=0.5)
    good = judge(s, observation(HEALTHY_RUN))
    unauthorised = [RequestRecord(t=0.3 + t / 100, status=401, latency_s=0.01, trace_id="a", detail="Invalid token")
                    for t in range(5)]
    bad = judge(s, observation([*HEALTHY_RUN, *unauthorised], profile="as_written"))
    plenty = judge(s, observation([ok(t / 100) for t in range(900)], windows=(), profile="as_measured"))
    claims = {(c.key, c.profile): c for c in audit([good, bad, plenty])}
    assert claims[("valid_tokens", "hardened")].held is True
    assert claims[("valid_tokens", "as_written")].held is False
    # 55 flawless steady requests cannot show 99.5%: inconclusive, with the n that would decide it.
    assert claims[("steady_state", "hardened")].held == "inconclusive" and "n needed" in claims[("steady_state", "hardened")].evidence
    assert claims[("steady_state", "as_written")].held is False  # 5 failures in 60 steady requests
    assert claims[("steady_state", "as_measured")].held is True  # 900 of 900


def test_overall_verdict_only_looks_at_gated_profiles():
    s = scenario([{"metric": "success_rate", "min": 0.99}], load=LOAD_FOR_99_PERCENT)
    passing = judge(s, observation([ok(1 + t / 10) for t in range(400)], windows=()))
    failing = judge(s, observation([refused(1 + t / 10) for t in range(5)], windows=(), profile="as_written"))
    assert overall_verdict([passing, failing], ["hardened"]) == "pass"
    assert overall_verdict([passing, failing], ["as_written", "hardened"]) == "fail"
    assert overall_verdict([], ["hardened"]) == "fail"
    assert overall_verdict([passing], ["hardened"], failed_claims=1) == "fail"


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([3, 1, 2, 4], 50) == 2
    assert percentile(range(1, 101), 99) == 99


def test_a_refused_key_must_be_shown_by_fal_and_named_in_every_failure_it_causes():
    def failed(t: float, error: str) -> RequestRecord:
        return RequestRecord(t=t, status=202, latency_s=0.01, trace_id=f"{t}", generation_id=f"g{t}",
                             final_status="failed", terminal_t=t + 0.1, error=error)

    s = scenario([{"metric": "unexplained_key_failures", "max": 0}],
                 [{"at": 2, "for": 3, "fal": {"key_revoked": True}}])
    revoked = [FaultWindow(2.0, 5.0, "FAL key_revoked=True", "fal", "key_revoked", None, {"key_revoked": True})]
    refusals = [{"t": 2.5, "kind": "submit", "status": 401, "path": "/fal-ai/flux/dev", "generation_id": "g2.5"}]
    healthy = [ok(t / 10) for t in range(15)]

    def run(error: str, fal_log=refusals):
        obs = observation([*healthy, failed(2.5, error)], windows=(), fal_log=fal_log)
        return judge(s, dataclasses.replace(obs, fault_windows=revoked))

    named = run("FAL refused the service's API key (HTTP 401); check FAL_KEY")
    assert named.outcome == "passed" and named.metrics["fal_refused_key_calls"] == 1
    vague = run("FalClientHTTPError: Unauthorized")
    assert vague.verdict == "fail" and vague.metrics["unexplained_key_failures"] == 1
    unseen = run("FAL refused the service's API key (HTTP 401)", fal_log=[])
    assert unseen.outcome == "invalid"  # FAL never refused anything: the fault did not take


def test_a_service_failing_one_steady_request_in_a_hundred_reads_not_held_and_overload_is_left_out():
    s = scenario([{"metric": "requests", "min": 1}])
    one_in_a_hundred = [ok(t / 100) for t in range(1000)]
    for record in one_in_a_hundred[::100]:
        record.final_status = "failed"
    flaky = judge(s, observation(one_in_a_hundred, windows=()))
    overloaded = judge(s, observation([refused(t / 100) for t in range(300)], windows=()))
    overloaded.steady_state = False  # an overload scenario's refusals are not a steady state
    clean = judge(s, observation([ok(t / 100) for t in range(900)], windows=(), profile="as_written"))
    clean_but_overloaded = overloaded.__class__(**{**overloaded.__dict__, "profile": "as_written"})
    claims = {(c.key, c.profile): c for c in audit([flaky, clean, clean_but_overloaded])}
    assert claims[("steady_state", "hardened")].held is False, claims[("steady_state", "hardened")].evidence
    assert claims[("steady_state", "as_written")].held is True, claims[("steady_state", "as_written")].evidence
