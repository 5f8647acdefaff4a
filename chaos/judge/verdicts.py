"""Verdicts: a scenario's checks judged against what one run observed, each fault's effect proven.

A scenario passes only when every check held and every fault was seen to bite. A fault with no
visible effect makes the run invalid (it proved nothing); a check without enough evidence makes it
inconclusive; neither is ever a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chaos.judge import admission, telemetry_truth
from chaos.judge.attribution import misattribution_examples
from chaos.judge.checks import NAMED_BY, CheckResult, evaluate
from chaos.judge.effects import fault_effects
from chaos.judge.measures import (
    generation_errors,
    missing_timings,
    phase_records,
    reasons_503,
    request_metrics,
    run_metrics,
    timeline,
)
from chaos.judge.registry import RUN_METRICS
from chaos.judge.stats import Status
from chaos.run.observations import Observation
from chaos.scenarios.model import Scenario

# The keys of report.json's per-scenario `metrics` (DESIGN.md), followed by extras.
CONTRACT_METRICS = ("requests", "success_rate", "rate_503", "breaker_opened", "time_to_open_s", "recovery_s",
                    "upstream_attempts_per_generation", "lost_generations")


@dataclass
class ScenarioResult:
    """The verdict of one scenario on one profile, with the metrics and series the reports show."""

    name: str
    profile: str
    timing: str
    verdict: str  # pass | fail
    checks: list[CheckResult]
    metrics: dict[str, Any]
    outcome: str = "passed"  # passed | failed (a check not held) | inconclusive (too little evidence) | invalid
    faults: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # the scenario's GENCHAOS_* overrides
    evidence: list[str] = field(default_factory=list)  # claims this scenario exercises
    error: str | None = None
    duration_s: float = 0.0  # how long the scenario took to run, for junit.xml
    timings: dict[str, float] = field(default_factory=dict)  # what the service said it ran with
    telemetry: list[dict[str, Any]] = field(default_factory=list)
    steady_state: bool = True  # its requests outside fault windows count towards the steady-state claim

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


def scenario_metrics(obs: Observation, settle_s: float) -> dict[str, Any]:
    """Run-wide metrics: the contract keys first, then request metrics per phase and 503 reasons;
    ``outside`` covers requests sent outside every fault window extended by ``settle_s``."""
    whole = request_metrics(obs.requests)
    run_values = run_metrics(obs)
    merged = {**whole, **run_values}
    metrics = {key: merged[key] for key in CONTRACT_METRICS}
    metrics.update({k: v for k, v in merged.items() if k not in metrics})
    metrics["reasons_503"] = reasons_503(obs.requests)
    metrics["generation_errors"] = generation_errors(obs.requests)
    metrics["phases"] = {phase: request_metrics(phase_records(obs, phase))
                         for phase in ("before", "during", "after") if obs.fault_windows}
    metrics["outside"] = request_metrics(phase_records(obs, "outside", settle_s))
    metrics["misattributed_503_examples"] = misattribution_examples(obs)
    metrics["generation_times_s"] = [r.generation_latency_s for r in obs.requests
                                     if r.accepted and r.generation_latency_s is not None]
    return metrics


def _effect_checks(obs: Observation) -> list[CheckResult]:
    return [CheckResult(f"fault had an effect: {e.fault}", e.shown, "a visible effect", e.evidence,
                        Status.HELD.value if e.shown else Status.NOT_HELD.value) for e in fault_effects(obs)]


def _outcome(checks: list[CheckResult], effects: list[CheckResult]) -> str:
    if any(not e.passed for e in effects):
        return "invalid"
    statuses = {c.status for c in checks}
    if Status.NOT_HELD.value in statuses:
        return "failed"
    return "inconclusive" if Status.INCONCLUSIVE.value in statuses else "passed"


def judge(scenario: Scenario, obs: Observation) -> ScenarioResult:
    """Every check that applies to the observed profile, and every fault's effect; the verdict passes
    only if all hold."""
    for metric, missing in missing_timings(obs).items():
        obs.unmeasurable.setdefault(metric, missing)
    unreached = admission.why_shedding_unmeasured(obs)
    if unreached:
        obs.unmeasurable.setdefault("shed_requests", unreached)
    comparisons = telemetry_truth.compare(obs)
    for metric, missing in telemetry_truth.NO_EVIDENCE.items():
        if metric not in comparisons:
            obs.unmeasurable.setdefault(metric, missing)
    metrics = scenario_metrics(obs, scenario.settle_s)
    run_values = {key: metrics[key] for key in (*RUN_METRICS, *NAMED_BY.values())}
    checks = [evaluate(check, obs, run_values) for check in scenario.checks_for(obs.profile)]
    effects = _effect_checks(obs)
    outcome = _outcome(checks, effects)
    return ScenarioResult(
        name=scenario.name, profile=obs.profile, timing=obs.timing,
        verdict="pass" if outcome == "passed" else "fail", outcome=outcome,
        checks=effects + checks, metrics=metrics,
        faults=[{"start": w.start, "end": w.end, "description": w.description, "dependency": w.dependency,
                 "proxy_bytes": w.proxy_bytes} for w in obs.fault_windows],
        timeline=timeline(obs), settings=dict(scenario.service_env), evidence=list(scenario.evidence),
        timings=dict(obs.timings), telemetry=telemetry_truth.rows(obs, comparisons),
        steady_state=scenario.steady_state,
    )


def broken_run(scenario: Scenario, profile: str, error: str) -> ScenarioResult:
    """The result of a scenario that could not run to the end (set-up or runner failure)."""
    return ScenarioResult(
        name=scenario.name, profile=profile, timing=scenario.timing, verdict="fail", outcome="invalid",
        checks=[CheckResult("scenario ran to completion", False, "no error", error, Status.NOT_HELD.value)],
        metrics={key: None for key in CONTRACT_METRICS} | {"requests": 0, "lost_generations": 0,
                                                           "breaker_opened": False},
        settings=dict(scenario.service_env), evidence=list(scenario.evidence), error=error,
    )


def overall_verdict(results: list[ScenarioResult], gated_profiles: list[str], failed_claims: int = 0) -> str:
    """pass only if every result of the gated profiles passed (and at least one ran) and none of
    their claims reads not held."""
    gated = [r for r in results if r.profile in gated_profiles]
    return "pass" if gated and all(r.passed for r in gated) and not failed_claims else "fail"
