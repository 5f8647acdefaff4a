"""Watching the service during a load test the way the chaos runner does: the breaker states and
Prometheus counters its contract says it publishes, and the FAL emulator's request log.

The chaos runner's sampler is asyncio code; here it runs in its own event loop inside one
greenlet (gevent makes that loop's sockets cooperative), so the verdicts see the same samples.
Counters are kept as the difference between the end and the start of the test, because a running
stack (``genchaos up``) keeps its counters from earlier tests.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import gevent
import httpx

from chaos.contract.model import Contract, ContractError
from chaos.run.observations import BreakerSample
from chaos.run.telemetry import TelemetrySampler, judged_timings, scrape_counters
from chaos.stack.embedded import StackInfo
from chaos.stack.faults import FalEmulatorControl, FaultError
from chaos.stack.keepalive import pool_limits

logger = logging.getLogger(__name__)
STOP_TIMEOUT_S = 10.0


def counter_delta(end: dict[str, float], start: dict[str, float]) -> dict[str, float]:
    return {key: value - start.get(key, 0.0) for key, value in end.items()}


class ServiceObserver:
    """Samples breakers from ``start`` to ``stop``; afterwards holds samples, counters and the FAL log."""

    def __init__(self, service_url: str, stack: StackInfo | None, contract: Contract) -> None:
        self._service_url = service_url
        self._stack = stack
        self._contract = contract
        self._greenlet: gevent.Greenlet | None = None
        self._stop: asyncio.Event | None = None
        self._started_at = 0.0
        self.samples: list[BreakerSample] = []
        self.counters: dict[str, float] = {}
        self.timings: dict[str, float] = {}

    def start(self, started_at: float) -> None:
        self._started_at = started_at
        self.samples, self.counters, self.timings = [], {}, {}
        self._greenlet = gevent.spawn(asyncio.run, self._watch())

    async def _watch(self) -> None:
        self._stop = asyncio.Event()
        async with httpx.AsyncClient(base_url=self._service_url, limits=pool_limits()) as client:
            baseline = await scrape_counters(client, self._contract)
            try:
                self.timings = await judged_timings(client, self._contract, self._stack.timing if self._stack else "real")
            except ContractError as exc:
                logger.warning("no timings to judge by: %s", exc)
            sampler = TelemetrySampler(client, self._contract, started_at=self._started_at)
            await sampler.run(self._stop)
            self.samples = sampler.breaker_samples
            self.counters = counter_delta(await scrape_counters(client, self._contract), baseline)

    def stop(self) -> None:
        """End sampling and wait for the last counters (idempotent)."""
        if self._greenlet is None:
            return
        if self._stop is not None:
            self._stop.set()
        self._greenlet.join(timeout=STOP_TIMEOUT_S)
        self._greenlet.kill(block=False)
        self._greenlet = None

    def fal_log(self) -> list[dict[str, Any]]:
        """FAL emulator requests since the test started, unix times (empty without a stack)."""
        if self._stack is None:
            return []
        control = FalEmulatorControl(self._stack.fal_admin_url, self._stack.ca_bundle)
        try:
            entries = control.requests()
        except FaultError as exc:
            logger.warning("cannot read the FAL emulator's request log: %s", exc)
            return []
        finally:
            control.close()
        return [entry for entry in entries if entry["t"] >= self._started_at]
