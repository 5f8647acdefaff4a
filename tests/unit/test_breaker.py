"""The circuit breaker's state machine, for both profiles, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from service.breaker import BreakerOpenError, BreakerPolicy, BreakerState, CircuitBreaker

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """Collects on_transition calls."""

    def __init__(self) -> None:
        self.transitions: list[tuple[str, BreakerState, BreakerState]] = []

    def __call__(self, name: str, from_state: BreakerState, to_state: BreakerState) -> None:
        self.transitions.append((name, from_state, to_state))


def make_breaker(policy: BreakerPolicy) -> tuple[CircuitBreaker, FakeClock, Recorder]:
    clock, recorder = FakeClock(), Recorder()
    return CircuitBreaker("fal", policy, clock=clock, on_transition=recorder), clock, recorder


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record_failure()


def open_breaker(breaker: CircuitBreaker) -> None:
    fail(breaker, breaker.policy.failure_threshold)
    assert breaker.state is OPEN


REPORT = BreakerPolicy.as_written(failure_threshold=5, recovery_timeout_s=30.0)
HARDENED = BreakerPolicy.hardened(failure_threshold=5, recovery_timeout_s=30.0, half_open_max_calls=2)
BOTH = pytest.mark.parametrize("policy", [REPORT, HARDENED], ids=["as_written", "hardened"])


@BOTH
def test_opens_at_exactly_the_threshold_of_consecutive_failures(policy: BreakerPolicy) -> None:
    breaker, _, _ = make_breaker(policy)
    fail(breaker, 4)
    assert breaker.state is CLOSED and breaker.allow_request()
    breaker.record_failure()
    assert breaker.state is OPEN and not breaker.allow_request()


@BOTH
def test_a_success_resets_the_consecutive_count(policy: BreakerPolicy) -> None:
    breaker, _, _ = make_breaker(policy)
    fail(breaker, 4)
    breaker.record_success()
    fail(breaker, 4)
    assert breaker.state is CLOSED
    assert breaker.snapshot()["consecutive_failures"] == 4


@BOTH
def test_half_opens_after_the_recovery_timeout_and_not_before(policy: BreakerPolicy) -> None:
    breaker, clock, _ = make_breaker(policy)
    open_breaker(breaker)
    clock.advance(29.9)
    assert breaker.state is OPEN
    with pytest.raises(BreakerOpenError) as rejected:
        breaker.guard()
    assert rejected.value.breaker_name == "fal"
    assert rejected.value.retry_after_s == pytest.approx(0.1)
    clock.advance(0.1)
    assert breaker.state is HALF_OPEN
    breaker.guard()


def test_report_policy_lets_every_request_through_while_half_open() -> None:
    breaker, clock, _ = make_breaker(REPORT)
    open_breaker(breaker)
    clock.advance(30)
    assert all(breaker.allow_request() for _ in range(100))
    assert breaker.state is HALF_OPEN


def test_hardened_policy_lets_only_the_configured_probes_through() -> None:
    breaker, clock, _ = make_breaker(HARDENED)
    open_breaker(breaker)
    clock.advance(30)
    assert [breaker.allow_request() for _ in range(4)] == [True, True, False, False]
    with pytest.raises(BreakerOpenError) as rejected:
        breaker.guard()
    assert rejected.value.retry_after_s == 0


@BOTH
def test_a_probe_success_closes_the_breaker(policy: BreakerPolicy) -> None:
    breaker, clock, _ = make_breaker(policy)
    open_breaker(breaker)
    clock.advance(30)
    assert breaker.allow_request()
    breaker.record_success()
    assert breaker.state is CLOSED
    assert breaker.snapshot()["opened_at"] is None
    fail(breaker, 4)
    assert breaker.state is CLOSED, "closing must start a fresh failure count"


@BOTH
def test_a_probe_failure_reopens_with_a_fresh_timer(policy: BreakerPolicy) -> None:
    breaker, clock, _ = make_breaker(policy)
    open_breaker(breaker)
    clock.advance(45)
    assert breaker.allow_request()
    breaker.record_failure()
    assert breaker.state is OPEN
    assert breaker.retry_after_s() == pytest.approx(30)
    clock.advance(29)
    assert not breaker.allow_request()
    clock.advance(1)
    assert breaker.allow_request()


@BOTH
def test_late_verdicts_while_open_do_not_move_the_timer(policy: BreakerPolicy) -> None:
    breaker, clock, _ = make_breaker(policy)
    open_breaker(breaker)
    clock.advance(10)
    breaker.record_failure()
    breaker.record_success()
    assert breaker.state is OPEN
    assert breaker.retry_after_s() == pytest.approx(20)


def test_rate_rule_opens_on_half_failures_without_consecutive_failures() -> None:
    policy = BreakerPolicy.hardened(failure_threshold=5, window_s=10.0, failure_rate_threshold=0.5, min_calls_in_window=10)
    breaker, clock, _ = make_breaker(policy)
    for _ in range(4):  # 8 calls, 4 failures, never two failures in a row
        breaker.record_success()
        breaker.record_failure()
        clock.advance(0.5)
    breaker.record_success()
    assert breaker.state is CLOSED, "9 calls are below min_calls_in_window"
    breaker.record_failure()  # 10 calls, 5 failures: 50 %
    assert breaker.state is OPEN


def test_report_policy_ignores_the_failure_rate() -> None:
    breaker, _, _ = make_breaker(REPORT)
    for _ in range(50):
        breaker.record_failure()
        breaker.record_success()
    assert breaker.state is CLOSED


def test_calls_older_than_the_window_no_longer_count() -> None:
    policy = BreakerPolicy.hardened(failure_threshold=5, window_s=10.0, failure_rate_threshold=0.5, min_calls_in_window=10)
    breaker, clock, _ = make_breaker(policy)
    for _ in range(4):
        breaker.record_failure()
        breaker.record_success()
    clock.advance(10)  # those 8 calls (4 failures) leave the window
    for _ in range(9):
        breaker.record_success()
    breaker.record_failure()  # would be 18 calls / 5 failures anyway, but 10 / 1 in the window
    assert breaker.state is CLOSED
    snapshot = breaker.snapshot()
    assert (snapshot["window_calls"], snapshot["window_failures"]) == (10, 1)
    clock.advance(10)
    assert breaker.snapshot()["window_calls"] == 0


def test_transitions_are_reported_once_each_in_order() -> None:
    breaker, clock, recorder = make_breaker(HARDENED)
    open_breaker(breaker)
    breaker.record_failure()
    clock.advance(30)
    for _ in range(3):
        breaker.state  # noqa: B018 - evaluating the state performs the lazy OPEN -> HALF_OPEN
    breaker.allow_request()
    breaker.record_failure()
    clock.advance(30)
    breaker.allow_request()
    breaker.record_success()
    breaker.record_success()
    assert recorder.transitions == [
        ("fal", CLOSED, OPEN),
        ("fal", OPEN, HALF_OPEN),
        ("fal", HALF_OPEN, OPEN),
        ("fal", OPEN, HALF_OPEN),
        ("fal", HALF_OPEN, CLOSED),
    ]


def test_retry_after_counts_down_to_zero() -> None:
    breaker, clock, _ = make_breaker(REPORT)
    assert breaker.retry_after_s() == 0
    open_breaker(breaker)
    assert breaker.retry_after_s() == pytest.approx(30)
    clock.advance(12.5)
    assert breaker.retry_after_s() == pytest.approx(17.5)
    clock.advance(100)
    assert breaker.retry_after_s() == 0


def test_snapshot_describes_the_breaker() -> None:
    breaker, clock, _ = make_breaker(HARDENED)
    fail(breaker, 2)
    breaker.record_success()
    breaker.record_failure()
    assert breaker.snapshot() == {
        "name": "fal",
        "state": "closed",
        "consecutive_failures": 1,
        "window_calls": 4,
        "window_failures": 3,
        "opened_at": None,
    }
    fail(breaker, 5)
    assert breaker.snapshot()["state"] == "open"
    assert breaker.snapshot()["opened_at"] == clock.now


async def test_call_records_success_and_failure() -> None:
    breaker, clock, _ = make_breaker(HARDENED)
    open_breaker(breaker)
    clock.advance(30)
    with pytest.raises(RuntimeError):
        async with breaker.call():
            raise RuntimeError("fal is down")
    assert breaker.state is OPEN
    clock.advance(30)
    async with breaker.call():
        pass
    assert breaker.state is CLOSED
    open_breaker(breaker)
    with pytest.raises(BreakerOpenError):
        async with breaker.call():
            pytest.fail("the body must not run while the breaker is open")


async def test_an_abandoned_probe_returns_its_slot() -> None:
    breaker, clock, _ = make_breaker(BreakerPolicy.hardened(half_open_max_calls=1))
    open_breaker(breaker)
    clock.advance(30)
    with pytest.raises(asyncio.CancelledError):
        async with breaker.call():
            raise asyncio.CancelledError
    assert breaker.state is HALF_OPEN
    with pytest.raises(ValueError):
        async with breaker.call(is_failure=lambda error: not isinstance(error, ValueError)):
            raise ValueError("a bad prompt says nothing about FAL's health")
    assert breaker.state is HALF_OPEN
    assert breaker.allow_request(), "both abandoned probes gave their slot back"


async def test_a_stale_probe_does_not_free_a_slot_of_a_later_half_open_period() -> None:
    breaker, clock, _ = make_breaker(BreakerPolicy.hardened(half_open_max_calls=1))
    open_breaker(breaker)
    clock.advance(30)
    stale_probe = breaker.call()
    await stale_probe.__aenter__()
    breaker.record_failure()  # another caller's late failure reopens the breaker
    clock.advance(30)
    assert breaker.allow_request()  # the one probe of the new period
    await stale_probe.__aexit__(asyncio.CancelledError, asyncio.CancelledError(), None)
    assert not breaker.allow_request()


@pytest.mark.parametrize(
    ("fields", "named_in_error"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"recovery_timeout_s": -1}, "recovery_timeout_s"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"window_s": 10.0}, "failure_rate_threshold"),
        ({"window_s": 0.0, "failure_rate_threshold": 0.5}, "window_s"),
        ({"window_s": 10.0, "failure_rate_threshold": 1.5}, "failure_rate_threshold"),
        ({"min_calls_in_window": 0}, "min_calls_in_window"),
    ],
)
def test_invalid_policies_are_refused_with_a_message(fields: dict, named_in_error: str) -> None:
    with pytest.raises(ValueError, match=named_in_error):
        BreakerPolicy(**fields)


RECOVERY_S = 5.0
VALID_TRANSITIONS = {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED), (HALF_OPEN, OPEN)}


class BreakerMachine(RuleBasedStateMachine):
    """Random interleavings of calls, verdicts, abandoned calls and time steps."""

    policy: BreakerPolicy

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.transitions: list[tuple[BreakerState, BreakerState, float]] = []
        self.breaker = CircuitBreaker("fal", self.policy, clock=self.clock, on_transition=self.on_transition)
        self.in_flight: list[tuple[object, int | None]] = []  # (call context, half-open period admitted in)

    def on_transition(self, _name: str, from_state: BreakerState, to_state: BreakerState) -> None:
        self.transitions.append((from_state, to_state, self.clock.now))

    @property
    def half_open_period(self) -> int:
        return sum(to_state is HALF_OPEN for _, to_state, _ in self.transitions)

    def teardown(self) -> None:
        self.loop.close()

    @initialize()
    def start_closed(self) -> None:
        assert self.breaker.state is CLOSED

    @rule(seconds=st.sampled_from([0.0, 0.5 * RECOVERY_S, RECOVERY_S]) | st.floats(0, 2 * RECOVERY_S))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def start_call(self) -> None:
        last = self.transitions[-1] if self.transitions else None
        open_since = last[2] if last and last[1] is OPEN else None
        call = self.breaker.call()
        try:
            self.loop.run_until_complete(call.__aenter__())
        except BreakerOpenError as rejected:
            assert rejected.retry_after_s >= 0
            assert self.breaker.state is OPEN or self.policy.half_open_max_calls is not None
            return
        assert open_since is None or self.clock.now - open_since >= RECOVERY_S, "admitted while OPEN"
        state = self.breaker.state
        self.in_flight.append((call, self.half_open_period if state is HALF_OPEN else None))

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data(), outcome=st.sampled_from(["success", "failure", "abandoned"]))
    def finish_call(self, data: st.DataObject, outcome: str) -> None:
        call, _ = self.in_flight.pop(data.draw(st.integers(0, len(self.in_flight) - 1)))
        error = {"success": None, "failure": RuntimeError("boom"), "abandoned": asyncio.CancelledError()}[outcome]
        exc_info = (None, None, None) if error is None else (type(error), error, None)
        self.loop.run_until_complete(call.__aexit__(*exc_info))

    @rule(failed=st.booleans())
    def late_verdict_of_an_unguarded_call(self, failed: bool) -> None:
        if failed:
            self.breaker.record_failure()
        else:
            self.breaker.record_success()

    @invariant()
    def transitions_are_valid_chained_and_timely(self) -> None:
        previous, opened_at = CLOSED, None
        for from_state, to_state, at in self.transitions:
            assert (from_state, to_state) in VALID_TRANSITIONS
            assert from_state is previous
            if to_state is OPEN:
                opened_at = at
            if to_state is HALF_OPEN:
                assert at - opened_at >= RECOVERY_S, "half-opened before the recovery timeout"
            previous = to_state

    @invariant()
    def open_rejects_until_the_timeout_then_half_opens(self) -> None:
        state = self.breaker.state
        if state is OPEN:
            assert not self.breaker.allow_request()
            assert 0 < self.breaker.retry_after_s() <= RECOVERY_S
        if self.transitions and self.transitions[-1][1] is OPEN:
            assert self.clock.now - self.transitions[-1][2] < RECOVERY_S

    @invariant()
    def probes_in_flight_stay_within_the_limit(self) -> None:
        if self.breaker.state is not HALF_OPEN or self.policy.half_open_max_calls is None:
            return
        probes = sum(period == self.half_open_period for _, period in self.in_flight)
        assert probes <= self.policy.half_open_max_calls

    @invariant()
    def closed_means_fewer_than_threshold_consecutive_failures(self) -> None:
        if self.breaker.state is CLOSED:
            assert self.breaker.snapshot()["consecutive_failures"] < self.policy.failure_threshold


class ReportBreakerMachine(BreakerMachine):
    policy = BreakerPolicy.as_written(failure_threshold=2, recovery_timeout_s=RECOVERY_S)


class HardenedBreakerMachine(BreakerMachine):
    policy = BreakerPolicy.hardened(
        failure_threshold=2,
        recovery_timeout_s=RECOVERY_S,
        half_open_max_calls=1,
        window_s=3 * RECOVERY_S,
        min_calls_in_window=4,
    )


TestReportBreakerProperties = ReportBreakerMachine.TestCase
TestHardenedBreakerProperties = HardenedBreakerMachine.TestCase
TestReportBreakerProperties.settings = TestHardenedBreakerProperties.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None
)
