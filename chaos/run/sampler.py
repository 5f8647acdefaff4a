"""Reading the service while a scenario runs: breaker states from /readyz every 100 ms, and the
Prometheus counters from /metrics (flattened to ``name{label=value,...}`` keys).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chaos.run.observations import BreakerSample
from chaos.stack.processes import StackError

SAMPLE_INTERVAL_S = 0.1
READ_TIMEOUT_S = 2.0
TIMINGS_TIMEOUT_S = 5.0  # read once, before the load: no hurry


async def published_timings(client: httpx.AsyncClient) -> dict[str, float]:
    """The timings the service says it runs with (its /readyz), which timed checks are judged against."""
    response = await client.get("/readyz", timeout=TIMINGS_TIMEOUT_S)
    timings = response.json().get("timings")
    if not isinstance(timings, dict):
        raise StackError("the service's /readyz does not publish its timings")
    return {name: float(value) for name, value in timings.items()}


async def scrape_counters(client: httpx.AsyncClient) -> dict[str, float]:
    """Every sample of /metrics as ``name{k=v,...}`` -> value (labels sorted)."""
    response = await client.get("/metrics", timeout=READ_TIMEOUT_S)
    response.raise_for_status()
    flat: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            flat[f"{sample.name}{{{labels}}}"] = sample.value
    return flat


class BreakerSampler:
    """Samples the breaker states in /readyz until stopped."""

    def __init__(self, client: httpx.AsyncClient, *, started_at: float,
                 clock: Callable[[], float] = time.time, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self._client = client
        self._started_at = started_at
        self._clock = clock
        self._interval_s = interval_s
        self.samples: list[BreakerSample] = []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._sample()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)
            except TimeoutError:
                pass

    async def _sample(self) -> None:
        t = self._clock() - self._started_at
        try:
            response = await self._client.get("/readyz", timeout=READ_TIMEOUT_S)
            breakers = response.json().get("breakers", {})
        except (httpx.HTTPError, ValueError, AttributeError):
            return  # an unreadable sample is a gap in the timeline, not a state
        states = {name: info.get("state", "unknown") for name, info in breakers.items() if isinstance(info, dict)}
        self.samples.append(BreakerSample(t=t, states=states))
