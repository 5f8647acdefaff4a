"""The plugin's pieces that need no stack: the failure message of a scenario that did not pass, profile
and dependency names, and scenario look-up errors raised before any stack is started."""

from __future__ import annotations

import pytest

from chaos.judge.checks import CheckResult
from chaos.judge.claims import ClaimResult
from chaos.judge.verdicts import ScenarioResult
from chaos.plugin.faults import proxy_of
from chaos.plugin.scenarios import ScenarioRun, ScenarioRunner, find_scenario
from chaos.plugin.stacks import resolve_profile, resolve_timing, stack_fixture
from chaos.scenarios.catalogue import ScenarioError
from chaos.stack.embedded import PROFILES, TIMINGS

HELD = CheckResult("lost_generations", True, "<= 0", 0, "held", n=40)


def result(outcome: str, checks: list[CheckResult], error: str | None = None) -> ScenarioResult:
    return ScenarioResult(name="fal_down", profile="hardened", timing="fast",
                          verdict="pass" if outcome == "passed" else "fail", outcome=outcome, checks=checks,
                          metrics={}, error=error)


def claim(held: bool | str, evidence: str) -> ClaimResult:
    status = {True: "held", False: "not held"}.get(held, "inconclusive")
    return ClaimResult(claim="100% circuit breaker recovery within 30 seconds", profile="hardened", held=held,
                       evidence=evidence, key="recovery_30s", measured=True, status=status)


def failure_of(run: ScenarioRun) -> str:
    with pytest.raises(AssertionError) as raised:
        run.assert_passed()
    return str(raised.value)


def test_a_passing_run_raises_nothing():
    ScenarioRun(result("passed", [HELD]), [claim(True, "recovered in 1.2s")]).assert_passed()


def test_a_failed_check_is_named_with_what_was_observed_and_expected():
    failed = CheckResult("recovery_s", False, "<= 8", 11.5, "not held")
    message = failure_of(ScenarioRun(result("failed", [HELD, failed]), []))
    assert message.splitlines() == [
        "scenario fal_down on profile hardened (fast timing): failed: a check did not hold",
        "  not held: recovery_s: observed 11.5, expected <= 8"]


def test_an_inconclusive_check_says_what_evidence_is_missing():
    few = CheckResult("success_rate[before]", False, ">= 0.7", "1.000 (n=6, 95% CI 0.610–1.000); inconclusive, "
                      "n needed: 9", "inconclusive", n=6)
    short = CheckResult("latency_p95_s[after]", False, "<= 5", "2.1 (only 3 requests, need 5)", "inconclusive", n=3)
    message = failure_of(ScenarioRun(result("inconclusive", [few, short]), []))
    assert "inconclusive: too little evidence to decide" in message
    assert "inconclusive: success_rate[before]: observed 1.000 (n=6, 95% CI 0.610–1.000); inconclusive, n needed: 9, " \
           "expected >= 0.7\n" in message
    assert message.endswith("latency_p95_s[after]: observed 2.1 (only 3 requests, need 5), expected <= 5 "
                            "(judged on 3 requests)")


def test_an_invalid_run_says_the_fault_proved_nothing_or_that_the_run_broke():
    no_effect = CheckResult("fault had an effect: fal proxy down", False, "a visible effect",
                            "no request failed and the proxy carried 5000 bytes", "not held")
    message = failure_of(ScenarioRun(result("invalid", [no_effect, HELD]), []))
    assert "invalid: a fault had no visible effect, so the run proved nothing about it" in message
    assert "not held: fault had an effect: fal proxy down: observed no request failed and the proxy carried " \
           "5000 bytes, expected a visible effect" in message
    broken = CheckResult("scenario ran to completion", False, "no error", "StackError: service did not start",
                         "not held")
    message = failure_of(ScenarioRun(result("invalid", [broken], error="StackError: service did not start"), []))
    assert "invalid: it could not run to the end" in message and "observed StackError: service did not start" in message


def test_a_failed_claim_fails_a_run_whose_checks_all_held():
    run = ScenarioRun(result("passed", [HELD]), [claim(False, "recovered in 41.0s (bound 30s)"),
                                                  claim("inconclusive", "2 of 3 opened")])
    assert not run.passed
    assert failure_of(run).splitlines() == [
        "scenario fal_down on profile hardened (fast timing): passed: every check held, but a claim of the report "
        "did not",
        "  claim not held: 100% circuit breaker recovery within 30 seconds: recovered in 41.0s (bound 30s)"]


def test_the_old_name_of_each_profile_and_timing_means_the_same_stack():
    assert resolve_profile("report") == resolve_profile("as_written") == "as_written"
    assert resolve_timing("report") == resolve_timing("real") == "real"
    assert stack_fixture("report") == stack_fixture("as_written") == "genchaos_stack_as_written"
    assert stack_fixture("hardened") == "genchaos_stack_hardened"


def test_unknown_profile_or_timing_names_the_choices():
    with pytest.raises(ValueError, match=f"unknown genchaos profile 'reprot'; choose one of {', '.join(PROFILES)}"):
        resolve_profile("reprot")
    with pytest.raises(ValueError, match=f"unknown genchaos timing 'slow'; choose one of {', '.join(TIMINGS)}"):
        resolve_timing("slow")
    assert resolve_timing("fast") == "fast"


def test_dependencies_are_named_by_what_they_are_or_by_their_proxy():
    assert [proxy_of(d) for d in ("fal", "database", "postgres", "storage")] == ["fal", "postgres", "postgres",
                                                                                  "storage"]
    with pytest.raises(ValueError, match="unknown dependency 'redis'; choose one of fal, database, storage"):
        proxy_of("redis")


def test_a_scenario_is_found_by_catalogue_name_or_file(tmp_path):
    assert find_scenario("fal_down").name == "fal_down"
    written = tmp_path / "mine.yaml"
    written.write_text("name: mine\ndescription: d\nload: {rate_per_s: 5, duration_s: 2}\n"
                       "checks: [{metric: rate_500, max: 0}]\n")
    assert find_scenario(written).name == find_scenario(str(written)).name == "mine"
    with pytest.raises(ScenarioError, match="not-there.yaml: cannot read"):
        find_scenario(tmp_path / "not-there.yaml")


def test_a_bad_scenario_or_profile_is_refused_before_any_stack_starts():
    def no_stack(profile: str):
        raise AssertionError(f"a stack was started for {profile}")

    runner = ScenarioRunner(no_stack, default_profile="hardened")
    with pytest.raises(ScenarioError, match="unknown scenario.*fal_dwon"):
        runner("fal_dwon")
    with pytest.raises(ValueError, match="unknown genchaos profile 'hardend'"):
        runner("fal_down", profile="hardend")
