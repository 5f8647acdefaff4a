"""Dependency health, checked in the background and served from a cache (so /readyz stays cheap)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from service.metrics import Metrics

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]


@dataclass
class DependencyHealth:
    up: bool | None = None  # None until the first check finished
    checked_at: float | None = None  # unix time
    latency_s: float | None = None
    error: str | None = None

    def as_dict(self) -> dict:
        state = "unknown" if self.up is None else ("up" if self.up else "down")
        return {"state": state, "checked_at": self.checked_at, "latency_s": self.latency_s, "error": self.error}


class HealthMonitor:
    """Runs every dependency check each `interval_s` (each bounded by `timeout_s`) and keeps the last result."""

    def __init__(self, checks: dict[str, Check], metrics: Metrics, *, interval_s: float, timeout_s: float) -> None:
        self._checks = checks
        self._metrics = metrics
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self.health = {name: DependencyHealth() for name in checks}

    def is_up(self, dependency: str) -> bool:
        """Optimistic before the first check, so a starting service does not refuse work it could do."""
        return self.health[dependency].up is not False

    async def refresh(self) -> None:
        await asyncio.gather(*(self._check_one(name, check) for name, check in self._checks.items()))

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self._interval_s)

    async def _check_one(self, name: str, check: Check) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout_s):
                await check()
        except Exception as error:  # any failure means down; the reason is kept for /readyz
            up, detail = False, f"{type(error).__name__}: {error}"[:300]
        else:
            up, detail = True, None
        was_up = self.health[name].up
        self.health[name] = DependencyHealth(up, time.time(), round(time.monotonic() - started, 4), detail)
        self._metrics.dependency_up.labels(name).set(1 if up else 0)
        if was_up is not None and was_up != up:
            log.warning("dependency %s is now %s", name, "up" if up else "down",
                        extra={"dependency": name, "error": detail})
