"""Verdicts: a scenario's checks judged against what one run observed, expected vs observed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chaos.measures import (
    generation_errors,
    phase_records,
    reasons_503,
    request_metrics,
    run_metrics,
    timeline,
    windows_of,
)
from chaos.observations import Observation
from chaos.scenarios.model import RUN_METRICS, Check, Scenario

# The keys of report.json's per-scenario `metrics` (DESIGN.md), followed by extras.
CONTRACT_METRICS = ("requests", "success_rate", "rate_503", "breaker_opened", "time_to_open_s", "recovery_s",
                    "upstream_attempts_per_generation", "lost_generations")


@dataclass
class CheckResult:
    name: str
    passed: bool
    expected: Any
    observed: Any


@dataclass
class ScenarioResult:
    """The verdict of one scenario on one profile, with the metrics and series the reports show."""

    name: str
    profile: str
    timing: str
    verdict: str  # pass | fail
    checks: list[CheckResult]
    metrics: dict[str, Any]
    faults: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # the scenario's GENCHAOS_* overrides
    evidence: list[str] = field(default_factory=list)  # claims this scenario exercises
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


def _worst(check: Check, values: list[Any]) -> Any:
    """The window value that argues most against the check (a failing one when there is one)."""
    numbers = [v for v in ([v for v in values if not check.holds(v)] or values) if v is not None]
    if not numbers:
        return None
    if check.min is not None and (check.max is None or any(v < check.min for v in numbers)):
        return min(numbers)
    return max(numbers) if check.max is not None else numbers[0]


def evaluate(check: Check, obs: Observation, run_values: dict[str, Any]) -> CheckResult:
    """Judge one check: on the run, on the requests of a phase, or on every window of that phase."""
    if check.metric in RUN_METRICS:
        observed = run_values[check.metric]
        return CheckResult(check.label, check.holds(observed), check.expected, observed)
    records = phase_records(obs, check.phase, check.settle_s)
    if check.window_s is None:
        observed = request_metrics(records)[check.metric]
        if len(records) < check.min_requests:
            return CheckResult(check.label, False, check.expected,
                               f"{observed} (only {len(records)} requests, need {check.min_requests})")
        return CheckResult(check.label, check.holds(observed), check.expected, observed)
    values = [request_metrics(members)[check.metric]
              for _, members in windows_of(records, check.window_s) if len(members) >= check.min_requests]
    if not values:
        return CheckResult(check.label, False, check.expected, f"no window with {check.min_requests}+ requests")
    observed = _worst(check, values)
    return CheckResult(check.label, all(check.holds(v) for v in values), check.expected, observed)


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
    return metrics


def judge(scenario: Scenario, obs: Observation) -> ScenarioResult:
    """Every check that applies to the observed profile; the verdict passes only if all hold."""
    metrics = scenario_metrics(obs, scenario.settle_s)
    run_values = {key: metrics[key] for key in RUN_METRICS}
    checks = [evaluate(check, obs, run_values) for check in scenario.checks_for(obs.profile)]
    return ScenarioResult(
        name=scenario.name, profile=obs.profile, timing=obs.timing,
        verdict="pass" if all(c.passed for c in checks) else "fail",
        checks=checks, metrics=metrics,
        faults=[{"start": w.start, "end": w.end, "description": w.description} for w in obs.fault_windows],
        timeline=timeline(obs), settings=dict(scenario.service_env), evidence=list(scenario.evidence),
    )


def broken_run(scenario: Scenario, profile: str, error: str) -> ScenarioResult:
    """The result of a scenario that could not run to the end (set-up or runner failure)."""
    return ScenarioResult(
        name=scenario.name, profile=profile, timing=scenario.timing, verdict="fail",
        checks=[CheckResult("scenario ran to completion", False, "no error", error)],
        metrics={key: None for key in CONTRACT_METRICS} | {"requests": 0, "lost_generations": 0,
                                                           "breaker_opened": False,
                                                           "upstream_attempts_per_generation": 0.0},
        settings=dict(scenario.service_env), evidence=list(scenario.evidence), error=error,
    )


def overall_verdict(results: list[ScenarioResult], gated_profiles: list[str]) -> str:
    """pass only if every result of the gated profiles passed (and at least one ran)."""
    gated = [r for r in results if r.profile in gated_profiles]
    return "pass" if gated and all(r.passed for r in gated) else "fail"
