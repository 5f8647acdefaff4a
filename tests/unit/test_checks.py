"""Checks a contract cannot give evidence for are unmeasured, not failed; checks of things the run can name
(forged tokens let in, another user's generations seen) name them when not held."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaos.contract.model import load_contract, parse_contract
from chaos.judge.checks import evaluate
from chaos.judge.measures import run_metrics
from chaos.judge.stats import Status
from chaos.judge.verdicts import judge
from chaos.run.observations import Observation
from chaos.run.telemetry import unmeasurable
from chaos.scenarios.model import Scenario
from tests.unit.judge_support import REFERENCE, completed, observation

LUMEN = load_contract(Path(__file__).resolve().parents[2] / "examples" / "lumen" / "genchaos.yaml")


def scenario(*checks: dict[str, Any]) -> Scenario:
    return Scenario.model_validate({"name": "synthetic", "description": "synthetic",
                                    "load": {"rate_per_s": 10, "duration_s": 10}, "faults": [],
                                    "checks": list(checks)})


def calm(**fields: Any) -> Observation:
    """A calm run: every request completed, nothing broken; ``fields`` set on the observation."""
    obs = observation([completed(t / 2) for t in range(20)])
    for name, value in fields.items():
        setattr(obs, name, value)
    return obs


def checks_of(result) -> dict[str, Any]:
    return {c.name: c for c in result.checks}


# --- unmeasured ---------------------------------------------------------------------------------

def test_a_check_the_contract_cannot_give_evidence_for_is_unmeasured_and_the_scenario_still_passes():
    s = scenario({"metric": "storage_timeouts", "min": 1}, {"metric": "lost_generations", "max": 0})
    result = judge(s, calm(unmeasurable={"storage_timeouts": "the contract names no upstream-attempts counter"}))
    check = checks_of(result)["storage_timeouts"]
    assert (check.status, check.passed) == (Status.UNMEASURED.value, False)
    assert check.observed == "unmeasured: the contract names no upstream-attempts counter"
    assert checks_of(result)["lost_generations"].status == Status.HELD.value
    assert result.outcome == "passed" and result.verdict == "pass"


def test_the_same_check_measured_and_not_held_fails_the_scenario():
    result = judge(scenario({"metric": "storage_timeouts", "min": 1}), calm())
    assert checks_of(result)["storage_timeouts"].status == Status.NOT_HELD.value
    assert result.outcome == "failed"


def test_an_unmeasured_check_does_not_hide_another_check_not_held():
    s = scenario({"metric": "storage_timeouts", "min": 1}, {"metric": "lost_generations", "max": 0})
    obs = calm(unmeasurable={"storage_timeouts": "no counter"})
    obs.requests[0].final_status = None  # lost
    assert judge(s, obs).outcome == "failed"


def test_an_unmeasured_request_metric_is_unmeasured_too():
    check = scenario({"metric": "idempotency_violations", "max": 0}).checks[0]
    obs = calm(unmeasurable={"idempotency_violations": "the contract claims no Idempotency-Key support"})
    obs.requests[0].replay_ok = False  # would not hold if it were judged
    result = evaluate(check, obs, run_metrics(obs))
    assert result.status == Status.UNMEASURED.value and not result.passed


def test_what_a_contract_leaves_unmeasurable():
    assert unmeasurable(REFERENCE) == {}
    missing = unmeasurable(LUMEN)
    assert set(missing) == {"idempotency_violations", "flood_refused_429", "fal_timeouts", "storage_timeouts",
                            "database_timeouts", "miscounted_503s", "miscounted_generations",
                            "breaker_state_disagreements", "readiness_disagreements", "unjoined_traces",
                            "admitted_beyond_bound", "shed_requests", "slo_rule_disagreements",
                            "fast_burn_alert_fired", "unexplained_503_spans", "misreported_durations"}
    assert "Idempotency-Key" in missing["idempotency_violations"]
    bounded = parse_contract({"name": "b", "start": {"url": "http://h:1"}, "features": {"per_user_limit": 3}})
    assert "flood_refused_429" not in unmeasurable(bounded)


# --- not held, and named ------------------------------------------------------------------------

def test_a_forged_token_let_in_fails_the_check_and_is_named():
    s = scenario({"metric": "forged_tokens_accepted", "max": 0})
    result = judge(s, calm(accepted_forgeries=["expired (202)", "legacy supabase_token_<uuid> (202)"]))
    check = checks_of(result)["forged_tokens_accepted"]
    assert check.status == Status.NOT_HELD.value and result.outcome == "failed"
    assert check.observed == "2 (expired (202); legacy supabase_token_<uuid> (202))"


def test_no_forged_token_let_in_holds_with_a_plain_count():
    check = checks_of(judge(scenario({"metric": "forged_tokens_accepted", "max": 0}), calm()))[
        "forged_tokens_accepted"]
    assert (check.status, check.observed) == (Status.HELD.value, 0)


def test_another_users_generation_seen_fails_the_check_and_is_named():
    s = scenario({"metric": "cross_user_reads", "max": 0})
    result = judge(s, calm(cross_user_reads=["GET another user's g1: 200"]))
    check = checks_of(result)["cross_user_reads"]
    assert check.status == Status.NOT_HELD.value and check.observed == "1 (GET another user's g1: 200)"
    assert checks_of(judge(s, calm()))["cross_user_reads"].status == Status.HELD.value


def test_a_run_flag_the_timings_cannot_decide_is_unmeasured_not_failed():
    s = scenario({"metric": "breaker_opened_on_failure_rate", "equals": True})
    obs = calm()
    obs.timings = {"breaker_failure_threshold": 5}  # no failure-rate rule published or preset
    result = judge(s, obs)
    check = next(c for c in result.checks if c.name.startswith("breaker_opened_on_failure_rate"))
    assert check.status == "unmeasured" and "breaker_window_s" in str(check.observed)
    assert result.outcome != "failed"
