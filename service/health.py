"""Dependency health, checked in the background and served from a cache (so /readyz stays cheap).

/readyz is unauthenticated, so it shows a fixed reason code per failed check; the error text, which
can name hosts, ports and library internals, goes to the log only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from service.metrics import Metrics

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]


@dataclass
class DependencyHealth:
    up: bool | None = None  # None until the first check finished
    checked_at: float | None = None  # unix time
    latency_s: float | None = None
    reason: str | None = None  # a failure_reason code when down

    def as_dict(self) -> dict:
        state = "unknown" if self.up is None else ("up" if self.up else "down")
        return {"state": state, "checked_at": self.checked_at, "latency_s": self.latency_s, "reason": self.reason}


# Most specific first; the first kind found anywhere in the error's cause chain names the failure.
_REASONS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    ((TimeoutError, httpx.TimeoutException), "timeout"),
    (ConnectionRefusedError, "connection_refused"),
    ((OSError, httpx.TransportError), "unreachable"),
    (httpx.HTTPStatusError, "bad_status"),
)


def failure_reason(error: BaseException) -> str:
    """A fixed code for why a check failed, safe to show to anyone."""
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and len(chain) < 8:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for kinds, code in _REASONS:
        if any(isinstance(link, kinds) for link in chain):
            return code
    return "check_failed"


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
        except Exception as error:  # any failure means down; the code is kept for /readyz, the text logged
            up, reason, detail = False, failure_reason(error), f"{type(error).__name__}: {error}"[:300]
        else:
            up, reason, detail = True, None, None
        was_up = self.health[name].up
        self.health[name] = DependencyHealth(up, time.time(), round(time.monotonic() - started, 4), reason)
        self._metrics.dependency_up.labels(name).set(1 if up else 0)
        if was_up != up and not (was_up is None and up):  # every change, and a dependency down from the start
            log.warning("dependency %s is now %s", name, "up" if up else "down",
                        extra={"dependency": name, "reason": reason, "error": detail})
