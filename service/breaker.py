"""Circuit breaker guarding a dependency, with an injectable clock.

States: CLOSED (calls flow) -> OPEN (calls rejected) after too many failures -> HALF_OPEN
(trial calls, "probes") once `recovery_timeout_s` has passed -> CLOSED on a probe success,
back to OPEN with a fresh timer on a probe failure.

Two profiles, see `BreakerPolicy.as_written` and `BreakerPolicy.hardened`: the report's breaker
trips on consecutive failures only and lets every request through while half-open; the
hardened one limits concurrent probes and also trips on the failure rate over a sliding
time window (so an intermittent 60 % error rate opens it without five failures in a row).

Use it either with the primitives (`guard()` / `allow_request()`, then `record_success()`
or `record_failure()`), or, preferably, with `async with breaker.call(): ...`, which also
returns the half-open probe slot when the call ends without a verdict (cancelled, or an
error that says nothing about the dependency's health). A probe slot reserved through
`allow_request()` is only returned by a verdict, so primitive users must always record one.

A breaker is meant for one event loop: it holds no locks.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass


class BreakerState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerOpenError(Exception):
    """A call was not allowed: the breaker is open, or half-open with every probe slot taken."""

    def __init__(self, breaker_name: str, retry_after_s: float) -> None:
        super().__init__(f"circuit breaker {breaker_name!r} is open; retry in {retry_after_s:.1f} s")
        self.breaker_name = breaker_name
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class BreakerPolicy:
    """When the breaker opens and how it recovers."""

    failure_threshold: int = 5
    """Consecutive failures that open the breaker."""
    recovery_timeout_s: float = 30.0
    """Time spent OPEN before probes are let through."""
    half_open_max_calls: int | None = None
    """Concurrent probes while HALF_OPEN; None lets every request through."""
    window_s: float | None = None
    """Length of the sliding window of the failure-rate rule; None disables the rule."""
    failure_rate_threshold: float | None = None
    """Failure fraction (0..1] within the window that opens the breaker."""
    min_calls_in_window: int = 10
    """The rate rule only judges windows holding at least this many calls."""

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {self.failure_threshold}")
        if self.recovery_timeout_s < 0:
            raise ValueError(f"recovery_timeout_s must be >= 0, got {self.recovery_timeout_s}")
        if self.half_open_max_calls is not None and self.half_open_max_calls < 1:
            raise ValueError(f"half_open_max_calls must be >= 1 or None, got {self.half_open_max_calls}")
        if (self.window_s is None) != (self.failure_rate_threshold is None):
            raise ValueError("window_s and failure_rate_threshold must be set together (or both None)")
        if self.window_s is not None and self.window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {self.window_s}")
        if self.failure_rate_threshold is not None and not 0 < self.failure_rate_threshold <= 1:
            raise ValueError(f"failure_rate_threshold must be in (0, 1], got {self.failure_rate_threshold}")
        if self.min_calls_in_window < 1:
            raise ValueError(f"min_calls_in_window must be >= 1, got {self.min_calls_in_window}")

    @property
    def rate_rule_enabled(self) -> bool:
        return self.window_s is not None

    @classmethod
    def as_written(cls, failure_threshold: int = 5, recovery_timeout_s: float = 30.0) -> BreakerPolicy:
        """The report's breaker: consecutive failures only, unlimited half-open traffic."""
        return cls(failure_threshold=failure_threshold, recovery_timeout_s=recovery_timeout_s)

    @classmethod
    def hardened(
        cls,
        failure_threshold: int = 5,
        recovery_timeout_s: float = 30.0,
        half_open_max_calls: int = 1,
        window_s: float = 10.0,
        failure_rate_threshold: float = 0.5,
        min_calls_in_window: int = 10,
    ) -> BreakerPolicy:
        """Limited probes plus a failure-rate rule (defaults as Hystrix: 50 % over 10 s)."""
        return cls(
            failure_threshold=failure_threshold,
            recovery_timeout_s=recovery_timeout_s,
            half_open_max_calls=half_open_max_calls,
            window_s=window_s,
            failure_rate_threshold=failure_rate_threshold,
            min_calls_in_window=min_calls_in_window,
        )


def _every_exception_is_a_failure(_error: Exception) -> bool:
    return True


class CircuitBreaker:
    """One breaker around one dependency; see the module docstring for the state machine.

    `on_transition(name, from_state, to_state)` is called once per state change, after the
    change. OPEN -> HALF_OPEN happens lazily, the first time the breaker is consulted after
    the recovery timeout (`state`, `allow_request`, `guard`, `snapshot`, ...).

    Verdicts arriving while OPEN (late results of calls let through before it opened) are
    ignored: they neither extend nor shorten the recovery timer.
    """

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_transition: Callable[[str, BreakerState, BreakerState], None] | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._on_transition = on_transition
        self._state = BreakerState.CLOSED
        self._opened_at: float | None = None
        self._consecutive_failures = 0
        self._window: deque[tuple[float, bool]] = deque()  # (clock time, failed), oldest first
        self._probes_in_flight = 0
        self._half_open_period = 0  # counts HALF_OPEN periods, so stale probe slots are not returned twice

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.policy.recovery_timeout_s:
            self._half_open_period += 1
            self._probes_in_flight = 0
            self._transition(BreakerState.HALF_OPEN)
        return self._state

    def allow_request(self) -> bool:
        """True if a call may go ahead now; while HALF_OPEN this reserves a probe slot."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        limit = self.policy.half_open_max_calls
        if limit is not None and self._probes_in_flight >= limit:
            return False
        self._probes_in_flight += 1
        return True

    def guard(self) -> None:
        """Raise BreakerOpenError unless `allow_request()`."""
        if not self.allow_request():
            raise BreakerOpenError(self.name, self.retry_after_s())

    def record_success(self) -> None:
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._close()
        elif state is BreakerState.CLOSED:
            self._consecutive_failures = 0
            self._remember_in_window(failed=False)

    def record_failure(self) -> None:
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._open()
        elif state is BreakerState.CLOSED:
            self._consecutive_failures += 1
            self._remember_in_window(failed=True)
            if self._consecutive_failures >= self.policy.failure_threshold or self._failure_rate_exceeded():
                self._open()

    @contextlib.asynccontextmanager
    async def call(
        self, *, is_failure: Callable[[Exception], bool] = _every_exception_is_a_failure
    ) -> AsyncIterator[None]:
        """Run the body as one guarded call: raises BreakerOpenError if it is not allowed.

        Normal exit records a success; an `Exception` for which `is_failure` is true records a
        failure; anything else (cancellation, errors that are not the dependency's fault)
        only returns the probe slot, so an abandoned probe never blocks the breaker.
        """
        self.guard()
        admitted_in_period = self._half_open_period if self._state is BreakerState.HALF_OPEN else None
        try:
            yield
        except Exception as error:
            if is_failure(error):
                self.record_failure()
            else:
                self._return_probe_slot(admitted_in_period)
            raise
        except BaseException:
            self._return_probe_slot(admitted_in_period)
            raise
        self.record_success()

    def retry_after_s(self) -> float:
        """Seconds until the breaker may half-open; 0 unless OPEN."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.policy.recovery_timeout_s - (self._clock() - self._opened_at))

    def snapshot(self) -> dict:
        """State for /readyz and logs; `opened_at` is on the breaker's clock (None when CLOSED)."""
        state = self.state
        self._forget_old_calls()
        return {
            "name": self.name,
            "state": state.value,
            "consecutive_failures": self._consecutive_failures,
            "window_calls": len(self._window),
            "window_failures": sum(failed for _, failed in self._window),
            "opened_at": self._opened_at,
        }

    def _return_probe_slot(self, admitted_in_period: int | None) -> None:
        still_same_period = self.state is BreakerState.HALF_OPEN and admitted_in_period == self._half_open_period
        if still_same_period and self._probes_in_flight > 0:
            self._probes_in_flight -= 1

    def _remember_in_window(self, *, failed: bool) -> None:
        if self.policy.rate_rule_enabled:
            self._window.append((self._clock(), failed))
            self._forget_old_calls()

    def _forget_old_calls(self) -> None:
        if not self.policy.rate_rule_enabled:
            return
        oldest_kept = self._clock() - self.policy.window_s
        while self._window and self._window[0][0] <= oldest_kept:
            self._window.popleft()

    def _failure_rate_exceeded(self) -> bool:
        if not self.policy.rate_rule_enabled or len(self._window) < self.policy.min_calls_in_window:
            return False
        failures = sum(failed for _, failed in self._window)
        return failures / len(self._window) >= self.policy.failure_rate_threshold

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._reset_counts()
        self._transition(BreakerState.OPEN)

    def _close(self) -> None:
        self._opened_at = None
        self._reset_counts()
        self._transition(BreakerState.CLOSED)

    def _reset_counts(self) -> None:
        self._consecutive_failures = 0
        self._window.clear()
        self._probes_in_flight = 0

    def _transition(self, to_state: BreakerState) -> None:
        from_state, self._state = self._state, to_state
        if self._on_transition is not None:
            self._on_transition(self.name, from_state, to_state)
