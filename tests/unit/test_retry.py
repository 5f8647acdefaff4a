"""Retry policies: schedules, deadline, budget, which errors are retried, and reporting."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.retry import RetryBudget, RetryPolicy, backoff_schedule, build_retrying


class FakeTime:
    """A clock that only moves when the code under test sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(float(seconds))
        self.now += seconds


class Flaky:
    """An operation that raises the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: BaseException, time: FakeTime | None = None, attempt_duration_s: float = 0.0) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.time = time
        self.attempt_duration_s = attempt_duration_s

    async def __call__(self) -> str:
        self.calls += 1
        if self.time is not None:
            self.time.now += self.attempt_duration_s
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Unavailable(Exception):
    pass


def is_unavailable(error: BaseException) -> bool:
    return isinstance(error, Unavailable)


def test_report_schedule_is_a_fixed_five_seconds_despite_the_exponential_claim() -> None:
    assert backoff_schedule(RetryPolicy.as_written(attempts=3, base_delay_s=5.0)) == [5.0, 5.0]
    assert backoff_schedule(RetryPolicy.as_written(attempts=1, base_delay_s=5.0)) == []


@given(
    seed=st.integers(0, 2**32),
    attempts=st.integers(1, 12),
    base=st.floats(0.01, 10),
    cap=st.floats(0.01, 120),
)
def test_hardened_sleeps_are_full_jitter_within_growing_caps(seed: int, attempts: int, base: float, cap: float) -> None:
    schedule = backoff_schedule(RetryPolicy.hardened(attempts, base, cap), random.Random(seed))
    assert len(schedule) == attempts - 1
    for n, sleep_s in enumerate(schedule, start=1):
        assert 0 <= sleep_s <= min(cap, base * 2 ** (n - 1))


def test_hardened_sleeps_spread_over_the_whole_window() -> None:
    """Full jitter, not "cap plus a little noise": many draws cover [0, cap] from bottom to top."""
    policy = RetryPolicy.hardened(attempts=5, base_delay_s=1.0, max_delay_s=6.0)
    rng = random.Random(7)
    schedules = [backoff_schedule(policy, rng) for _ in range(400)]
    for n, cap in enumerate([1.0, 2.0, 4.0, 6.0]):
        draws = [schedule[n] for schedule in schedules]
        assert min(draws) < 0.1 * cap and max(draws) > 0.9 * cap
        assert sum(draws) / len(draws) == pytest.approx(cap / 2, rel=0.15)


def test_the_same_seed_gives_the_same_schedule() -> None:
    policy = RetryPolicy.hardened(attempts=6, base_delay_s=1.0, max_delay_s=30.0)
    assert backoff_schedule(policy, random.Random(3)) == backoff_schedule(policy, random.Random(3))


@given(seed=st.integers(0, 2**32), deadline=st.floats(0.5, 40))
def test_hardened_schedule_stays_inside_the_deadline(seed: int, deadline: float) -> None:
    policy = RetryPolicy.hardened(attempts=20, base_delay_s=1.0, max_delay_s=10.0, deadline_s=deadline)
    assert sum(backoff_schedule(policy, random.Random(seed))) < deadline


async def test_retries_until_success_and_reports_each_retry() -> None:
    time = FakeTime()
    reported: list[tuple[int, float, str]] = []
    operation = Flaky(Unavailable("first"), Unavailable("second"))
    retrying = build_retrying(
        RetryPolicy.as_written(attempts=3, base_delay_s=5.0),
        retry_on=is_unavailable,
        on_retry=lambda attempt, sleep_s, error: reported.append((attempt, sleep_s, str(error))),
        sleep=time.sleep,
        clock=time.clock,
    )
    assert await retrying(operation) == "ok"
    assert operation.calls == 3
    assert time.sleeps == [5.0, 5.0]
    assert reported == [(1, 5.0, "first"), (2, 5.0, "second")]


async def test_gives_up_after_the_attempts_and_raises_the_last_error() -> None:
    time = FakeTime()
    operation = Flaky(Unavailable("1"), Unavailable("2"), Unavailable("3"), Unavailable("4"))
    retrying = build_retrying(RetryPolicy.as_written(3, 5.0), retry_on=is_unavailable, sleep=time.sleep, clock=time.clock)
    with pytest.raises(Unavailable, match="3"):
        await retrying(operation)
    assert operation.calls == 3


async def test_a_non_retryable_error_is_raised_at_once() -> None:
    time = FakeTime()
    operation = Flaky(ValueError("bad prompt"))
    retrying = build_retrying(RetryPolicy.as_written(3, 5.0), retry_on=is_unavailable, sleep=time.sleep, clock=time.clock)
    with pytest.raises(ValueError, match="bad prompt"):
        await retrying(operation)
    assert operation.calls == 1
    assert time.sleeps == []


async def test_cancellation_is_never_retried() -> None:
    time = FakeTime()
    operation = Flaky(asyncio.CancelledError())
    retrying = build_retrying(RetryPolicy.as_written(3, 5.0), retry_on=lambda _: True, sleep=time.sleep, clock=time.clock)
    with pytest.raises(asyncio.CancelledError):
        await retrying(operation)
    assert operation.calls == 1


async def test_the_deadline_counts_the_time_spent_in_attempts() -> None:
    time = FakeTime()
    operation = Flaky(*[Unavailable(str(n)) for n in range(10)], time=time, attempt_duration_s=4.0)
    retrying = build_retrying(
        RetryPolicy.hardened(attempts=10, base_delay_s=1.0, max_delay_s=2.0, deadline_s=10.0),
        retry_on=is_unavailable,
        sleep=time.sleep,
        clock=time.clock,
        rng=random.Random(1),
    )
    with pytest.raises(Unavailable):
        await retrying(operation)
    assert operation.calls in (2, 3), "4 s attempts and up to 2 s sleeps fit two or three attempts in 10 s"
    assert time.now - operation.calls * 4.0 == pytest.approx(sum(time.sleeps))
    assert time.now - 4.0 < 10.0, "no attempt may start after the deadline"


def test_budget_refuses_after_exhaustion_and_refills_over_time() -> None:
    time = FakeTime()
    budget = RetryBudget(ratio=0.5, min_retries_per_s=0.2, ttl_s=10.0, clock=time.clock)
    for _ in range(4):
        budget.record_attempt()
    granted = [budget.try_spend_retry() for _ in range(6)]
    assert granted == [True, True, True, True, False, False], "0.5 * 4 attempts + 0.2/s * 10 s = 4 retries"
    time.now += 5.0
    assert not budget.try_spend_retry(), "spent retries still count within ttl"
    time.now += 5.0
    assert budget.try_spend_retry(), "after ttl the spent retries have left the account"


def test_budget_grants_its_reserve_without_traffic() -> None:
    budget = RetryBudget(ratio=0.2, min_retries_per_s=1.0, ttl_s=10.0, clock=FakeTime().clock)
    assert sum(budget.try_spend_retry() for _ in range(20)) == 10


async def test_an_exhausted_budget_stops_retrying_and_raises_the_last_error() -> None:
    time = FakeTime()
    budget = RetryBudget(ratio=0.0, min_retries_per_s=0.1, ttl_s=10.0, clock=time.clock)  # one retry per 10 s
    refused: list[BaseException] = []
    retrying = build_retrying(
        RetryPolicy.hardened(attempts=5, base_delay_s=0.1, max_delay_s=0.1),
        retry_on=is_unavailable,
        budget=budget,
        sleep=time.sleep,
        clock=time.clock,
        on_budget_exhausted=refused.append,
    )
    operation = Flaky(Unavailable("a"), Unavailable("b"), Unavailable("c"))
    with pytest.raises(Unavailable, match="b"):
        await retrying(operation)
    assert operation.calls == 2
    assert [str(error) for error in refused] == ["b"]


async def test_every_first_attempt_earns_retry_budget() -> None:
    time = FakeTime()
    budget = RetryBudget(ratio=0.5, min_retries_per_s=0.0, ttl_s=10.0, clock=time.clock)
    retrying = build_retrying(RetryPolicy.as_written(2, 0.0), retry_on=is_unavailable, budget=budget, sleep=time.sleep)
    for _ in range(4):
        assert await retrying(Flaky()) == "ok"
    assert [budget.try_spend_retry() for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize(
    ("fields", "named_in_error"),
    [
        ({"attempts": 0}, "attempts"),
        ({"base_delay_s": -1}, "base_delay_s"),
        ({"max_delay_s": -1}, "max_delay_s"),
        ({"deadline_s": 0}, "deadline_s"),
    ],
)
def test_invalid_policies_are_refused_with_a_message(fields: dict, named_in_error: str) -> None:
    with pytest.raises(ValueError, match=named_in_error):
        RetryPolicy(**fields)


def test_invalid_budgets_are_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        RetryBudget(ttl_s=0)
