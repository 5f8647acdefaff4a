"""What a service says about itself, read where its contract says it is: the timings it runs with,
its breakers' states (sampled every 100 ms while a scenario runs) and its Prometheus counters
(flattened to ``name{label=value,...}`` keys). All optional: a contract without them gives none, and
the checks that would need them are unmeasured.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chaos.contract.model import Contract, JsonKey
from chaos.run.observations import BreakerSample

SAMPLE_INTERVAL_S = 0.1
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
    if contract.telemetry.metrics.upstream_attempts is None:
        for dependency in ("fal", "storage", "database"):
            missing[f"{dependency}_timeouts"] = "the contract names no upstream-attempts counter"
    return missing


async def _read_key(client: httpx.AsyncClient, where: JsonKey, timeout_s: float) -> object:
    response = await client.get(where.path, timeout=timeout_s)
    body = response.json()
    return body.get(where.key) if isinstance(body, dict) else None


async def judged_timings(client: httpx.AsyncClient, contract: Contract, timing: str,
                         settings: dict[str, str] | None = None) -> dict[str, float]:
    """The timings a run is judged against: the contract's preset with the scenario's settings that reach
    the service, overridden by what the service publishes where the contract says it does."""
    timings = {**contract.preset(timing).values, **contract.scenario_settings(settings or {})[1]}
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


class BreakerSampler:
    """Samples the breaker states the service publishes until stopped (nothing without such telemetry)."""

    def __init__(self, client: httpx.AsyncClient, where: JsonKey | None, *, started_at: float,
                 clock: Callable[[], float] = time.time, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self._client = client
        self._where = where
        self._started_at = started_at
        self._clock = clock
        self._interval_s = interval_s
        self.samples: list[BreakerSample] = []

    async def run(self, stop: asyncio.Event) -> None:
        while self._where is not None and not stop.is_set():
            await self._sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)

    async def _sample(self) -> None:
        assert self._where is not None
        t = self._clock() - self._started_at
        try:
            breakers = await _read_key(self._client, self._where, READ_TIMEOUT_S)
        except (httpx.HTTPError, ValueError):
            return  # an unreadable sample is a gap in the timeline, not a state
        if not isinstance(breakers, dict):
            return
        states = {name: info.get("state", "unknown") for name, info in breakers.items() if isinstance(info, dict)}
        self.samples.append(BreakerSample(t=t, states=states))
