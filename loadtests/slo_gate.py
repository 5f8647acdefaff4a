"""The SLO gate: the chaos suites' verdicts (chaos/verdicts.py) on what a load test observed.

The generation records gathered from every user become the same ``Observation`` the chaos runner
builds, so success rate, 503 rate, generation p95 and recovery time are judged by the same code,
overall and per phase (before, during and after the faults); the flooding user's POSTs become its
flood requests, judged by the flood_* metrics only. Locust's own statistics (counts, failures by
reason, GENERATION percentiles) and a warning when the load generator itself was CPU-bound go into
the same JSON summary.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locust.runners import CPU_WARNING_THRESHOLD, MasterRunner

from chaos.judge.registry import RATE_METRICS
from chaos.judge.stats import Status
from chaos.judge.verdicts import CheckResult, ScenarioResult, judge
from chaos.run.observations import FaultWindow, Observation, RequestRecord
from chaos.run.runner import breaker_seen_by_clients
from chaos.scenarios.model import Check, Scenario
from chaos.stack.embedded import PROFILES
from loadtests.users import GENERATION_REQUEST_TYPE

logger = logging.getLogger(__name__)
MAX_LISTED_TRACES = 20

# The gate of a load test without a scenario: most generations succeed, none is lost.
UNSCRIPTED_CHECKS = [Check(metric="success_rate", min=0.95), Check(metric="lost_generations", max=0)]


@dataclass
class RunFacts:
    """Everything the gate judges, gathered by the locustfile when the test ends."""

    scenario: Scenario | None
    profile: str
    timing: str
    started_at: float  # unix time of t=0
    duration_s: float
    records: list[RequestRecord]  # absolute unix times
    flood_records: list[RequestRecord] = field(default_factory=list)  # the flooding user's POSTs, likewise
    fault_windows: list[FaultWindow] = field(default_factory=list)
    breaker_samples: list = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # what the service said it runs with
    service_counters: dict[str, float] = field(default_factory=dict)
    fal_log: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # fault timeline problems
    unmeasurable: dict[str, str] = field(default_factory=dict)  # metric -> evidence the contract cannot give
    upstream_metric: str | None = None  # the service's upstream-attempts counter, where its contract names one


def _relative(record: RequestRecord, started_at: float) -> RequestRecord:
    terminal = None if record.terminal_t is None else record.terminal_t - started_at
    return dataclasses.replace(record, t=record.t - started_at, terminal_t=terminal)


def _since_start(records: list[RequestRecord], started_at: float) -> list[RequestRecord]:
    """The records with times relative to the test's start, as the judge reads them, in the order sent."""
    return sorted((_relative(r, started_at) for r in records), key=lambda r: r.t)


def observation(facts: RunFacts) -> Observation:
    """What the judge reads, as `genchaos run` builds it: a service that publishes no breaker states has
    its breaker read from the answers clients got (chaos.run.runner.breaker_seen_by_clients)."""
    requests = _since_start(facts.records, facts.started_at)
    return Observation(
        scenario=facts.scenario.name if facts.scenario else "unscripted",
        profile=facts.profile, timing=facts.timing, started_at=facts.started_at, duration_s=facts.duration_s,
        requests=requests,
        flood_requests=_since_start(facts.flood_records, facts.started_at),
        breaker_samples=list(facts.breaker_samples) or breaker_seen_by_clients(requests), fault_windows=sorted(facts.fault_windows, key=lambda w: w.start),
        fal_log=facts.fal_log, service_counters=facts.service_counters,
        timings=dict(facts.timings),
        service_env=dict(facts.scenario.service_env) if facts.scenario else {},
        allowed_503_reasons=list(facts.scenario.allowed_503_reasons) if facts.scenario else [],
        settle_s=facts.scenario.settle_s if facts.scenario else 0.0,
        unmeasurable=dict(facts.unmeasurable), upstream_metric=facts.upstream_metric,
    )


def _unscripted() -> Scenario:
    """A stand-in scenario holding only the default checks (no load, no faults: Locust drove the run)."""
    return Scenario.model_construct(name="unscripted", description="load test without a scenario",
                                    checks=UNSCRIPTED_CHECKS, profiles=list(PROFILES), faults=[],
                                    service_env={})


def _thin_phase_check(outcome: CheckResult, checks: dict[str, Check]) -> Check | None:
    """The rate or windowed check ``outcome`` judged, if it read inconclusive for want of requests (the
    judge's text then gives an interval, not the count that explains it)."""
    check = checks.get(outcome.name)
    if check is None or outcome.status != Status.INCONCLUSIVE.value or outcome.n is None:
        return None
    if outcome.n >= check.min_requests or (check.metric not in RATE_METRICS and not check.window_s):
        return None
    return check


def _name_thin_phases(result: ScenarioResult, scenario: Scenario) -> None:
    """Say how many requests were sent in a phase too thin to judge (a short --run-time, a slow spawn)."""
    checks = {check.label: check for check in scenario.checks_for(result.profile)}
    for outcome in result.checks:
        check = _thin_phase_check(outcome, checks)
        if check is not None:
            where = "in the whole run" if check.phase == "all" else f"in phase {check.phase!r}"
            outcome.observed = (f"only {outcome.n} requests were sent {where}, {check.min_requests} needed; "
                                f"{outcome.observed}")


def _faults_not_applied(facts: RunFacts) -> str | None:
    """Which scheduled faults never ran and why, or None when all ran."""
    scheduled = sorted(facts.scenario.faults, key=lambda f: f.at_s) if facts.scenario else []
    missing = scheduled[len(facts.fault_windows):]
    if not missing:
        return None
    names = ", ".join(f"{fault.describe()} at {fault.at_s:g}s" for fault in missing)
    if all(fault.at_s >= facts.duration_s for fault in missing):
        why = (f"the load ended at {facts.duration_s:g}s; lengthen --run-time past "
               f"{max(f.end_s for f in scheduled):g}s")
    else:
        why = "the run stopped before them"
    return f"{len(missing)} of the scenario's {len(scheduled)} faults never ran ({names}): {why}"


def verdict(facts: RunFacts) -> ScenarioResult:
    """Judge the run; a fault timeline that went wrong fails it whatever the numbers say."""
    scenario = facts.scenario or _unscripted()
    result = judge(scenario, observation(facts))
    _name_thin_phases(result, scenario)
    problems = list(facts.errors)
    not_applied = _faults_not_applied(facts)
    if not_applied:
        problems.append(not_applied)
    if problems:
        result.checks.append(CheckResult("fault timeline ran as scheduled", False, "no error", "; ".join(problems),
                                         "not held"))
        result.verdict, result.outcome = "fail", "invalid"
    return result


def locust_figures(stats) -> dict[str, Any]:
    """Locust's own view: totals of HTTP calls and generations, per-request rows, failures by reason."""
    rows = list(stats.entries.values())
    http = [e for e in rows if e.method != GENERATION_REQUEST_TYPE]
    generation = [e for e in rows if e.method == GENERATION_REQUEST_TYPE]

    def seconds(entry, q: float) -> float | None:
        return entry.get_response_time_percentile(q) / 1000 if entry.num_requests else None

    return {
        "http_requests": sum(e.num_requests for e in http),
        "http_failures": sum(e.num_failures for e in http),
        "generations": sum(e.num_requests for e in generation),
        "generation_failures": sum(e.num_failures for e in generation),
        "generation_p50_s": seconds(generation[0], 0.5) if generation else None,
        "generation_p95_s": seconds(generation[0], 0.95) if generation else None,
        "by_request": [{"type": e.method, "name": e.name, "requests": e.num_requests, "failures": e.num_failures,
                        "p50_s": seconds(e, 0.5), "p95_s": seconds(e, 0.95)}
                       for e in sorted(rows, key=lambda e: (e.method, e.name))],
        "failures": [{"type": f.method, "name": f.name, "error": f.error, "occurrences": f.occurrences}
                     for f in sorted(stats.errors.values(), key=lambda f: -f.occurrences)],
    }


def cpu_warnings(runner, workers: dict) -> list[str]:
    """Where the load generator itself was CPU-bound (Locust's threshold), so latencies are suspect."""
    warnings = []
    if runner.cpu_warning_emitted:
        role = "master" if isinstance(runner, MasterRunner) else "load generator"
        warnings.append(f"the Locust {role} process went above {CPU_WARNING_THRESHOLD}% CPU")
    busy = [f"worker {worker_id} peaked at {tally.cpu_peak_percent:.0f}% CPU"
            for worker_id, tally in sorted(workers.items()) if tally.cpu_peak_percent > CPU_WARNING_THRESHOLD]
    if not busy and getattr(runner, "worker_cpu_warning_emitted", False):  # seen in a heartbeat only
        busy.append(f"a worker went above {CPU_WARNING_THRESHOLD}% CPU")
    return warnings + busy


def failing_traces(records: list[RequestRecord], started_at: float) -> list[dict[str, Any]]:
    """The first failing generations with their trace ids, to look them up in the traces."""
    failing = [r for r in records if not r.succeeded]
    return [{"trace_id": r.trace_id, "t": round(r.t - started_at, 3), "status": r.status,
             "reason_503": r.reason_503, "final_status": r.final_status, "error": r.error or r.detail}
            for r in sorted(failing, key=lambda r: r.t)[:MAX_LISTED_TRACES]]


def summary(result: ScenarioResult, facts: RunFacts, stats, runner, workers: dict) -> dict[str, Any]:
    """The JSON summary: the verdict in report.json's scenario shape, plus Locust's and the workers' view."""
    warnings = cpu_warnings(runner, workers)
    for warning in warnings:
        logger.warning("load generator CPU-bound: %s; the measured latencies may be the generator's", warning)
    return {
        **dataclasses.asdict(result),
        "locust": locust_figures(stats),
        "workers": {worker_id: dataclasses.asdict(tally) for worker_id, tally in sorted(workers.items())},
        "load_generator": {"cpu_bound": bool(warnings), "warnings": warnings},
        "failing_traces": failing_traces(facts.records, facts.started_at),
    }


def write_summary(document: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def log_verdict(result: ScenarioResult) -> None:
    logger.info("SLO gate for %s (%s profile): %s", result.name, result.profile, result.verdict.upper())
    for check in result.checks:
        logger.info("  %s %s: expected %s, observed %s", "PASS" if check.passed else check.status.upper(),
                    check.name, check.expected, check.observed)
