"""Retry policies on top of tenacity, with an injectable clock, sleep and random generator.

`report` reproduces the report's code: a fixed delay between attempts (although the report
calls it "exponential backoff"). `hardened` uses capped exponential backoff with full jitter
(AWS: the n-th sleep is uniform(0, min(max, base * 2**(n-1)))), a total deadline across
attempts, and, when given a `RetryBudget`, a per-process limit on retries so that a failing
dependency is not hammered with N times its normal traffic.
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import tenacity


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and how long to sleep between them."""

    attempts: int = 3
    """Total attempts, the first one included."""
    base_delay_s: float = 5.0
    max_delay_s: float = 60.0
    """Cap of the exponential backoff (unused by the fixed delay)."""
    exponential: bool = False
    """False: fixed `base_delay_s` between attempts; True: capped exponential + full jitter."""
    deadline_s: float | None = None
    """Total time budget from the start of the first attempt; no retry starts after it."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.base_delay_s < 0:
            raise ValueError(f"base_delay_s must be >= 0, got {self.base_delay_s}")
        if self.max_delay_s < 0:
            raise ValueError(f"max_delay_s must be >= 0, got {self.max_delay_s}")
        if self.deadline_s is not None and self.deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0 or None, got {self.deadline_s}")

    @classmethod
    def as_written(cls, attempts: int = 3, base_delay_s: float = 5.0) -> RetryPolicy:
        return cls(attempts=attempts, base_delay_s=base_delay_s)

    @classmethod
    def hardened(
        cls, attempts: int = 3, base_delay_s: float = 5.0, max_delay_s: float = 60.0, deadline_s: float | None = None
    ) -> RetryPolicy:
        return cls(
            attempts=attempts,
            base_delay_s=base_delay_s,
            max_delay_s=max_delay_s,
            exponential=True,
            deadline_s=deadline_s,
        )


class RetryBudget:
    """Per-process retry allowance, as Finagle's RetryBudget.

    Within any `ttl_s`, retries may total `ratio` times the first attempts made in that
    time plus a reserve of `min_retries_per_s * ttl_s`, so low traffic can still retry.
    Spent retries leave the account after `ttl_s`, which is how the budget refills.
    """

    def __init__(
        self,
        ratio: float = 0.2,
        min_retries_per_s: float = 1.0,
        ttl_s: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ratio < 0:
            raise ValueError(f"ratio must be >= 0, got {ratio}")
        if min_retries_per_s < 0:
            raise ValueError(f"min_retries_per_s must be >= 0, got {min_retries_per_s}")
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        self.ratio = ratio
        self.min_retries_per_s = min_retries_per_s
        self.ttl_s = ttl_s
        self._clock = clock
        self._first_attempts: deque[float] = deque()
        self._retries: deque[float] = deque()

    def record_attempt(self) -> None:
        """Count a first attempt (not a retry); each one earns `ratio` of a retry."""
        self._first_attempts.append(self._clock())

    def try_spend_retry(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) if it is exhausted."""
        self._forget_expired()
        allowed = self.ratio * len(self._first_attempts) + self.min_retries_per_s * self.ttl_s
        if len(self._retries) + 1 > allowed:
            return False
        self._retries.append(self._clock())
        return True

    def _forget_expired(self) -> None:
        oldest_kept = self._clock() - self.ttl_s
        for timestamps in (self._first_attempts, self._retries):
            while timestamps and timestamps[0] <= oldest_kept:
                timestamps.popleft()


class _FullJitterWait(tenacity.wait_exponential):
    """tenacity's `wait_random_exponential`, drawing from an injectable generator."""

    def __init__(self, base_delay_s: float, max_delay_s: float, rng: random.Random) -> None:
        super().__init__(multiplier=base_delay_s, max=max_delay_s)
        self._rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self._rng.uniform(0, super().__call__(retry_state))


def _tenacity_options(
    policy: RetryPolicy,
    *,
    retry_on: Callable[[BaseException], bool],
    budget: RetryBudget | None,
    on_retry: Callable[[int, float, BaseException], None] | None,
    on_budget_exhausted: Callable[[BaseException], None] | None,
    clock: Callable[[], float],
    rng: random.Random | None,
) -> dict[str, Any]:
    """Keyword arguments shared by the real (async) retrying and `backoff_schedule`."""
    if policy.exponential:
        wait = _FullJitterWait(policy.base_delay_s, policy.max_delay_s, rng if rng is not None else random.Random())
    else:
        wait = tenacity.wait_fixed(policy.base_delay_s)
    started_at: weakref.WeakKeyDictionary[tenacity.RetryCallState, float] = weakref.WeakKeyDictionary()

    def before_attempt(state: tenacity.RetryCallState) -> None:
        if state.attempt_number == 1:
            started_at[state] = clock()
            if budget is not None:
                budget.record_attempt()

    def should_stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= policy.attempts:
            return True
        if policy.deadline_s is not None and clock() - started_at[state] + state.upcoming_sleep >= policy.deadline_s:
            return True
        if budget is not None and not budget.try_spend_retry():
            if on_budget_exhausted is not None:
                on_budget_exhausted(state.outcome.exception())
            return True
        return False

    def report_retry(state: tenacity.RetryCallState) -> None:
        if on_retry is not None:
            on_retry(state.attempt_number, state.upcoming_sleep, state.outcome.exception())

    return {
        "stop": should_stop,
        "wait": wait,
        # Cancellation and interpreter exits are never retried, whatever `retry_on` says.
        "retry": tenacity.retry_if_exception(lambda error: isinstance(error, Exception) and retry_on(error)),
        "before": before_attempt,
        "before_sleep": report_retry,
        "reraise": True,
    }


def build_retrying(
    policy: RetryPolicy,
    *,
    retry_on: Callable[[BaseException], bool],
    budget: RetryBudget | None = None,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    on_budget_exhausted: Callable[[BaseException], None] | None = None,
) -> tenacity.AsyncRetrying:
    """An AsyncRetrying that applies `policy` and re-raises the last error when it gives up.

    Only exceptions for which `retry_on(error)` is true are retried (never cancellation).
    It gives up after `policy.attempts`, when the next sleep would reach `policy.deadline_s`
    (measured on `clock` from the start of the first attempt), or when `budget` refuses a
    retry, which is reported through `on_budget_exhausted(error)`. Each retry is reported
    before its sleep as `on_retry(attempt_number, sleep_s, error)`, where `attempt_number`
    is the 1-based attempt that just failed.

    Use it as `await retrying(fn, *args)` or `async for attempt in retrying: with attempt: ...`;
    tenacity keeps iteration state on the object, so build one per concurrent operation.
    """
    options = _tenacity_options(
        policy,
        retry_on=retry_on,
        budget=budget,
        on_retry=on_retry,
        on_budget_exhausted=on_budget_exhausted,
        clock=clock,
        rng=rng,
    )
    return tenacity.AsyncRetrying(sleep=sleep, **options)


class _AlwaysFails(Exception):
    pass


def backoff_schedule(policy: RetryPolicy, rng: random.Random | None = None) -> list[float]:
    """The sleeps between attempts if every attempt failed instantly (no budget applied).

    Computed by running the same tenacity configuration as `build_retrying` on a simulated
    clock, so it cannot drift from what the service really does.
    """
    sleeps: list[float] = []

    def simulated_clock() -> float:
        return sum(sleeps)

    def always_fail() -> None:
        raise _AlwaysFails

    options = _tenacity_options(
        policy,
        retry_on=lambda error: isinstance(error, _AlwaysFails),
        budget=None,
        on_retry=None,
        on_budget_exhausted=None,
        clock=simulated_clock,
        rng=rng,
    )
    try:
        tenacity.Retrying(sleep=lambda seconds: sleeps.append(float(seconds)), **options)(always_fail)
    except _AlwaysFails:
        pass
    return sleeps
