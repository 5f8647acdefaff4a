"""What a service says about itself, read where its contract says it is: the timings it runs with,
its breakers' states, readiness and breaker gauge (sampled while a scenario runs) and its Prometheus
counters (flattened to ``name{label=value,...}`` keys). All optional: a contract without them gives none, and
the checks that would need them are unmeasured.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chaos.contract.model import CAUSES, Contract, JsonKey
from chaos.run.observations import BreakerSample, ReadinessSample

SAMPLE_INTERVAL_S = 0.1
UNRECOGNISED = "unrecognised"  # a 503 whose sentence (or counter label) names no cause
READ_TIMEOUT_S = 2.0
TIMINGS_TIMEOUT_S = 5.0  # read once, before the load: no hurry


def unmeasurable(contract: Contract) -> dict[str, str]:
    """The metrics whose evidence this contract cannot give, each with what is missing: checks of them
    are reported unmeasured, never held and never failed for that alone."""
    missing: dict[str, str] = {}
    if not contract.features.idempotency_keys:
        missing["idempotency_violations"] = "the contract claims no Idempotency-Key support"
    if contract.features.per_user_limit is None:
        missing["flood_refused_429"] = "the contract claims no per-user limit"
    if contract.features.admission_bound is None:
        for metric in ("admitted_beyond_bound", "shed_requests"):
            missing[metric] = "the contract claims no admission bound"
    telemetry, metrics = contract.telemetry, contract.telemetry.metrics
    if metrics.upstream_attempts is None:
        for dependency in ("fal", "storage", "database"):
            missing[f"{dependency}_timeouts"] = "the contract names no upstream-attempts counter"
    if telemetry.metrics_path is None or metrics.http_503_total is None or metrics.cause_label is None:
        missing["miscounted_503s"] = "the contract names no 503 counter with a cause label"
    if telemetry.metrics_path is None or metrics.generation_seconds is None:
        missing["misreported_durations"] = "the contract names no histogram of generation durations"
    if telemetry.metrics_path is None or metrics.generations_total is None:
        missing["miscounted_generations"] = "the contract names no counter of generations by outcome"
    if telemetry.breakers is None and (telemetry.metrics_path is None or metrics.breaker_state is None):
        missing["breaker_state_disagreements"] = "the contract names neither published breaker states nor a gauge"
    if contract.features.readiness_path is None:
        missing["readiness_disagreements"] = "the contract claims no readiness endpoint"
    if telemetry.slo_rules is None:
        missing["slo_rule_disagreements"] = missing["fast_burn_alert_fired"] = "the contract names no SLO rules"
    elif telemetry.slo_rules.fast_burn_alert is None:
        missing["fast_burn_alert_fired"] = "the contract names no fast-burn alert"
    if telemetry.cause_span_attribute is None or contract.env.traces_file is None:
        missing["unexplained_503_spans"] = "the contract names no span attribute for a 503's cause, or no traces file"
    if not telemetry.trace_context or contract.env.traces_file is None:
        missing["unjoined_traces"] = "the contract claims no trace context carried to FAL, or names no traces file"
    return missing


async def _read_key(client: httpx.AsyncClient, where: JsonKey, timeout_s: float) -> object:
    response = await client.get(where.path, timeout=timeout_s)
    body = response.json()
    return body.get(where.key) if isinstance(body, dict) else None


async def judged_timings(client: httpx.AsyncClient, contract: Contract, timing: str,
                         settings: dict[str, str] | None = None) -> dict[str, float]:
    """The timings a run is judged against: the contract's preset with the scenario's settings that reach
    the service, overridden by what the service publishes where the contract says it does."""
    claimed = {name: value for name, value in (("admission_bound", contract.features.admission_bound),
                                               ("per_user_limit", contract.features.per_user_limit)) if value}
    timings = {**claimed, **contract.preset(timing).values, **contract.scenario_settings(settings or {})[1]}
    where = contract.telemetry.timings
    if where is not None:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            published = await _read_key(client, where, TIMINGS_TIMEOUT_S)
            if isinstance(published, dict):
                timings.update({name: float(value) for name, value in published.items()
                                if isinstance(value, int | float) and not isinstance(value, bool)})
    return timings


async def scrape_counters(client: httpx.AsyncClient, contract: Contract) -> dict[str, float]:
    """Every sample of the contract's metrics endpoint as ``name{k=v,...}`` -> value (labels sorted);
    empty when the contract names none or it cannot be read."""
    path = contract.telemetry.metrics_path
    if path is None:
        return {}
    try:
        response = await client.get(path, timeout=READ_TIMEOUT_S)
        response.raise_for_status()
        families = list(text_string_to_metric_families(response.text))
    except (httpx.HTTPError, ValueError):
        return {}
    flat: dict[str, float] = {}
    for family in families:
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            flat[f"{sample.name}{{{labels}}}"] = sample.value
    return flat


class TelemetrySampler:
    """Samples, until stopped, what the service says about its state: the breaker states it publishes
    (every 100 ms), whether its readiness endpoint says ready (as often), and its breaker-state gauge
    (every 500 ms: a full metrics scrape costs more). Each only where the contract names it."""

    GAUGE_EVERY = 5  # ticks between two reads of the gauge

    def __init__(self, client: httpx.AsyncClient, contract: Contract, *, started_at: float,
                 clock: Callable[[], float] = time.time, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self._client = client
        self._breakers = contract.telemetry.breakers
        self._readiness = contract.features.readiness_path
        self._metrics = contract.telemetry.metrics
        self._metrics_path = contract.telemetry.metrics_path if self._metrics.breaker_state else None
        self._started_at = started_at
        self._clock = clock
        self._interval_s = interval_s
        self.breaker_samples: list[BreakerSample] = []
        self.readiness_samples: list[ReadinessSample] = []
        self.gauge_samples: list[BreakerSample] = []

    @property
    def _idle(self) -> bool:
        return self._breakers is None and self._readiness is None and self._metrics_path is None

    async def run(self, stop: asyncio.Event) -> None:
        for tick in itertools.count():
            if self._idle or stop.is_set():
                return
            t = self._clock() - self._started_at
            await asyncio.gather(self._sample_state(t),
                                 *([self._sample_gauge(t)] if tick % self.GAUGE_EVERY == 0 else []))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)

    async def _get(self, path: str) -> httpx.Response | None:
        try:
            return await self._client.get(path, timeout=READ_TIMEOUT_S)
        except httpx.HTTPError:
            return None  # an unreadable sample is a gap in the timeline, not a state

    async def _sample_state(self, t: float) -> None:
        paths = {p for p in (self._readiness, self._breakers.path if self._breakers else None) if p}
        answers = dict(zip(paths, await asyncio.gather(*map(self._get, paths)), strict=True))
        ready = answers.get(self._readiness) if self._readiness else None
        if ready is not None:
            self.readiness_samples.append(ReadinessSample(t=t, ready=ready.is_success))
        breakers = answers.get(self._breakers.path) if self._breakers else None
        if breakers is not None:
            with contextlib.suppress(ValueError):
                body = breakers.json()
                published = body.get(self._breakers.key) if isinstance(body, dict) else None
                if isinstance(published, dict):
                    self.breaker_samples.append(BreakerSample(t=t, states={
                        name: info.get("state", "unknown") for name, info in published.items() if isinstance(info, dict)}))

    async def _sample_gauge(self, t: float) -> None:
        assert self._metrics_path is not None and self._metrics.breaker_state is not None
        response = await self._get(self._metrics_path)
        if response is None or not response.is_success:
            return
        state_of = {value: state for state, value in self._metrics.breaker_values.items()}
        states = {}
        with contextlib.suppress(ValueError):
            for family in text_string_to_metric_families(response.text):
                for sample in family.samples:
                    if sample.name == self._metrics.breaker_state:
                        name = sample.labels.get(self._metrics.breaker_label, "")
                        states[name] = state_of.get(sample.value, "unknown")
        self.gauge_samples.append(BreakerSample(t=t, states=states))


def counted_503s(before: dict[str, float], after: dict[str, float], contract: Contract) -> dict[str, int] | None:
    """The 503s the service counted during the run, grouped by the sentence of their cause (a group is its
    causes joined by "/", as ``sentence_group`` names them; a label naming no cause is "unrecognised");
    None without such a counter."""
    metrics = contract.telemetry.metrics
    if metrics.http_503_total is None or metrics.cause_label is None or not after:
        return None
    counted: dict[str, int] = {}
    for labels, value in _series_delta(before, after, metrics.http_503_total):
        value_of_label = labels.get(metrics.cause_label, "")
        cause = metrics.cause_values.get(value_of_label, value_of_label)
        group = sentence_group(contract, contract.sentence(cause)) if cause in CAUSES else UNRECOGNISED
        counted[group] = counted.get(group, 0) + round(value)
    return {group: n for group, n in counted.items() if n}


def counted_outcomes(before: dict[str, float], after: dict[str, float], contract: Contract) -> dict[str, int] | None:
    """The generations the service counted as completed and failed during the run (its label values read
    through the API's terminal statuses); None without such a counter."""
    metrics = contract.telemetry.metrics
    if metrics.generations_total is None or not after:
        return None
    outcome_of = {**{s: "completed" for s in contract.api.statuses.completed},
                  **{s: "failed" for s in contract.api.statuses.failed}}
    counted = {"completed": 0, "failed": 0}
    for labels, value in _series_delta(before, after, metrics.generations_total):
        outcome = outcome_of.get(labels.get(metrics.status_label, ""))
        if outcome:
            counted[outcome] += round(value)
    return counted


def counted_durations(before: dict[str, float], after: dict[str, float], contract: Contract) -> tuple[int, float] | None:
    """(completed generations observed, their seconds summed) by the service's duration histogram during
    the run; None without one."""
    metrics = contract.telemetry.metrics
    if metrics.generation_seconds is None or not after:
        return None
    completed = set(contract.api.statuses.completed)

    def grown(suffix: str) -> float:
        return sum(value for labels, value in _series_delta(before, after, f"{metrics.generation_seconds}{suffix}")
                   if labels.get(metrics.status_label) in completed)
    return round(grown("_count")), grown("_sum")


def sentence_group(contract: Contract, sentence: str | None) -> str:
    """The causes a 503 sentence can stand for, joined by "/" (the high-load sentence serves two)."""
    causes = [cause for cause in CAUSES if sentence is not None and contract.sentence(cause) == sentence]
    return "/".join(causes) or UNRECOGNISED


def _series_delta(before: dict[str, float], after: dict[str, float], name: str) -> list[tuple[dict[str, str], float]]:
    """How much each series of a counter grew, with its labels (the parser names a counter's samples
    ``<name>_total`` whether or not the family's name ends so)."""
    grown = []
    for key, value in after.items():
        metric, _, label_text = key.partition("{")
        if metric in (name, f"{name.removesuffix('_total')}_total"):
            labels = dict(pair.split("=", 1) for pair in label_text.rstrip("}").split(",") if pair)
            grown.append((labels, value - before.get(key, 0.0)))
    return grown
