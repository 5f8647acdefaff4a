"""The circuit breaker around FAL, as the incident report wrote it.

Opens after `threshold` consecutive failures. After `reset_s` it is half-open and lets every call
through (no probe limit); one success closes it, one more failure opens it again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class BreakerOpen(Exception):
    """Raised instead of calling FAL while the breaker is open."""


class Breaker:
    def __init__(self, threshold: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.reset_s = reset_s
        self.failures = 0
        self.opened_at: float | None = None
        self._clock = clock

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self._clock() - self.opened_at >= self.reset_s:
            return "half_open"
        return "open"

    def seconds_until_half_open(self) -> int:
        """Whole seconds a client should wait (at least 1), for Retry-After."""
        if self.opened_at is None:
            return 1
        left = self.reset_s - (self._clock() - self.opened_at)
        return max(1, math.ceil(left))

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def record_failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = self._clock()

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        if self.state == "open":
            raise BreakerOpen("circuit breaker is open")
        try:
            result = await fn()
        except Exception:
            self.record_failure()
            raise
        self.record_success()
        return result
