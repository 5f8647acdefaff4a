"""A scenario check judged against one run: held, not held or inconclusive, expected vs observed.

Rate metrics are judged on their 95% Wilson interval with the sample size beside them; other
metrics are exact. A phase or window with fewer requests than the check's ``min_requests`` is
inconclusive, never held. A run metric without a value (the breaker never opened, recovery never came)
is not held: what the check expects did not happen. A metric whose evidence the service's contract
cannot give (a feature it does not claim, telemetry it does not offer) is unmeasured: reported with
what is missing, never held, and never failing the scenario for that alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chaos.judge.measures import phase_records, rate_counts, request_metrics, server_error_examples, windows_of
from chaos.judge.registry import RATE_METRICS, RUN_METRICS
from chaos.judge.stats import RateVerdict, Status, judge_rate, worst
from chaos.run.observations import Observation, RequestRecord
from chaos.scenarios.model import Check

# Run metrics that count things the run can name: a check not held names them.
NAMED_BY = {"forged_tokens_accepted": "forged_tokens", "cross_user_reads": "cross_user_leaks",
            "abandoned_fal_jobs": "abandoned_jobs"}


@dataclass
class CheckResult:
    name: str
    passed: bool
    expected: Any
    observed: Any
    status: str = Status.HELD.value  # held | not held | inconclusive | unmeasured
    n: int | None = None  # requests the check was judged on (None for run metrics)
    interval: list[float] | None = None  # 95% Wilson interval of a rate
    n_needed: int | None = None  # inconclusive rates: the sample that would decide at the observed rate


def _result(check: Check, status: Status, observed: Any, n: int | None = None,
            rate: RateVerdict | None = None) -> CheckResult:
    return CheckResult(check.label, status is Status.HELD, check.expected, observed, status.value, n,
                       list(rate.interval) if rate else None, rate.n_needed if rate else None)


def _judge_records(check: Check, records: list[RequestRecord]) -> tuple[Status, Any, RateVerdict | None]:
    if check.metric in RATE_METRICS:
        part, whole = rate_counts(records)[check.metric]
        verdict = judge_rate(part, whole, *check.bounds)
        status = verdict.status if whole >= check.min_requests else Status.INCONCLUSIVE
        examples = server_error_examples(records) if check.metric == "rate_500" else []
        return status, verdict.describe() + (f" (e.g. {'; '.join(examples)})" if examples else ""), verdict
    observed = request_metrics(records)[check.metric]
    if len(records) < check.min_requests:
        return Status.INCONCLUSIVE, f"{observed} (only {len(records)} requests, need {check.min_requests})", None
    return (Status.HELD if check.holds(observed) else Status.NOT_HELD), observed, None


def evaluate(check: Check, obs: Observation, run_values: dict[str, Any]) -> CheckResult:
    """Judge one check: on the run, on the requests of a phase, or on every window of that phase."""
    missing = obs.unmeasurable.get(check.metric)
    if missing is not None:
        return _result(check, Status.UNMEASURED, f"unmeasured: {missing}")
    if check.metric in RUN_METRICS:
        observed = run_values[check.metric]
        status = Status.HELD if check.holds(observed) else Status.NOT_HELD
        named = run_values.get(NAMED_BY.get(check.metric, ""))
        if status is Status.NOT_HELD and named:
            observed = f"{observed} ({'; '.join(named)})"
        return _result(check, status, "none" if observed is None else observed)
    records = phase_records(obs, check.phase, check.settle_s)
    if check.window_s is None:
        status, observed, rate = _judge_records(check, records)
        return _result(check, status, observed, len(records), rate)
    windows = [members for _, members in windows_of(records, check.window_s) if len(members) >= check.min_requests]
    if not windows:
        return _result(check, Status.INCONCLUSIVE, f"no window with {check.min_requests}+ requests", len(records))
    judged = [(_judge_records(check, members), members) for members in windows]
    status = worst([verdict[0] for verdict, _ in judged])
    candidates = [(verdict, members) for verdict, members in judged if verdict[0] is status]

    def value(pair: tuple) -> float:
        return request_metrics(pair[1])[check.metric] or 0.0

    # The window that argues most against the check: the lowest value under a minimum, else the highest.
    (_, observed, rate), members = (min if check.min is not None else max)(candidates, key=value)
    return _result(check, status, observed, len(members), rate)
