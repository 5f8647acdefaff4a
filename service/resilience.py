"""The two resilience profiles: how the service admits requests, maps errors and calls dependencies.

`AsWrittenProfile` is the report's code reproduced literally (one breaker around generation, live
dependency checks on every POST, fixed retry delay, error mapping by message text).
`HardenedProfile` is the version we would ship (per-dependency breakers with limited probes,
jittered backoff under a retry budget and a deadline, cached health, typed errors, resuming fal
requests instead of orphaning them, load shedding).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import fal_client
import httpx
import tenacity

from service.breaker import BreakerOpenError, BreakerPolicy, BreakerState, CircuitBreaker
from service.db import CONNECTION_ERRORS, Database, NewGeneration
from service.errors import (
    DependencyUnavailable,
    GenerationFailed,
    Overloaded,
    Reason,
    ServiceUnavailable,
    reason_from_message,
    reason_from_type,
)
from service.fal_gateway import FalGateway
from service.health import HealthMonitor
from service.metrics import Metrics
from service.retry import RetryBudget, RetryPolicy, build_retrying
from service.settings import Settings
from service.storage_gateway import StorageGateway
from service.telemetry import add_event, tracer, untraced_queries
from service.upstream import record_rejected, upstream_call

log = logging.getLogger(__name__)
T = TypeVar("T")


class LeaseLost(Exception):
    """This worker no longer owns the generation (its lease lapsed in a database outage); another claim
    carries it on, so this one must stop without finishing the row."""


@dataclass
class FalJob:
    """What the FAL step needs to know about one generation."""

    generation_id: str
    arguments: dict[str, Any]
    fal_request_id: str | None
    save_request_id: Callable[[str | None], Awaitable[bool]]  # False: the lease is no longer ours
    deadline_at: float  # time.monotonic() after which no new attempt starts


@dataclass
class Dependencies:
    settings: Settings
    metrics: Metrics
    db: Database
    fal: FalGateway
    storage: StorageGateway
    health: HealthMonitor


class ResilienceProfile:
    """What both profiles share; subclasses decide admission, error mapping and the FAL step."""

    name: str

    def __init__(self, deps: Dependencies, breakers: dict[str, CircuitBreaker], retry_policy: RetryPolicy,
                 budget: RetryBudget | None) -> None:
        self.deps = deps
        self.breakers = breakers
        self.retry_policy = retry_policy
        self.budget = budget
        for name in breakers:
            deps.metrics.breaker_state.labels(name).set(0)

    @property
    def fal_breaker(self) -> CircuitBreaker:
        return self.breakers["fal"]

    def breaker_snapshots(self) -> dict[str, dict]:
        return {name: breaker.snapshot() for name, breaker in self.breakers.items()}

    async def admit(self) -> None:
        """Raise (ServiceUnavailable or a mapped error) if a new generation must be refused."""
        raise NotImplementedError

    def to_unavailable(self, error: Exception) -> ServiceUnavailable | None:
        """The 503 an error in the POST path becomes, or None for a genuine bug."""
        raise NotImplementedError

    async def insert(self, new: NewGeneration) -> tuple[dict, bool]:
        """Store a new generation (or find the one with the same idempotency key); (row, created)."""
        return await self.query(lambda: self.deps.db.insert_generation(new))

    async def query(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one API database query, metered (and untraced: the request's span times it)."""
        async with upstream_call(self.deps.metrics, "database", "query"):
            with untraced_queries():
                return await call()

    async def fal_output(self, job: FalJob) -> dict[str, Any]:
        raise NotImplementedError

    async def with_retries(self, dependency: str, operation: Callable[[], Awaitable[T]], job: FalJob) -> T:
        raise NotImplementedError

    def _retrying(self, dependency: str, policy: RetryPolicy, retry_on: Callable[[BaseException], bool]):
        metrics = self.deps.metrics

        def on_retry(attempt: int, sleep_s: float, error: BaseException) -> None:
            metrics.retries.labels(dependency).inc()
            add_event("retry", dependency=dependency, attempt=attempt, sleep_s=sleep_s, error=type(error).__name__)
            log.warning("retrying %s after attempt %d failed: %s", dependency, attempt, type(error).__name__,
                        extra={"dependency": dependency, "attempt": attempt, "error": str(error)[:200]})

        def on_budget_exhausted(error: BaseException) -> None:
            metrics.retry_budget_exhausted.labels(dependency).inc()
            add_event("retry_budget_exhausted", dependency=dependency)

        return build_retrying(policy, retry_on=retry_on, budget=self.budget, on_retry=on_retry,
                              on_budget_exhausted=on_budget_exhausted)

    def _retried(self, dependency: str, policy: RetryPolicy, retry_on: Callable[[BaseException], bool],
                 operation: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """Run ``operation`` under the retry policy, each attempt its own span numbered from 1."""
        attempts = itertools.count(1)

        async def traced_attempt() -> T:
            with tracer.start_as_current_span(f"{dependency}.attempt", attributes={
                    "genchaos.dependency": dependency, "genchaos.attempt": next(attempts)}) as span:
                result = await operation()
                span.set_attribute("genchaos.outcome", "success")
                return result

        return self._retrying(dependency, policy, retry_on)(traced_attempt)


class AsWrittenProfile(ResilienceProfile):
    """The report's code: one `fal` breaker, live checks per POST, substring error mapping, fixed delay."""

    name = "as_written"

    def __init__(self, deps: Dependencies) -> None:
        s = deps.settings
        breaker = CircuitBreaker(
            "fal", BreakerPolicy.as_written(s.breaker_failure_threshold, s.breaker_recovery_timeout_s),
            on_transition=_transition_recorder(deps.metrics))
        super().__init__(deps, {"fal": breaker}, RetryPolicy.as_written(s.retry_attempts, s.retry_base_delay_s), None)

    def _can_execute_generation(self) -> bool:
        return self.fal_breaker.allow_request()

    async def admit(self) -> None:
        if not self._can_execute_generation():
            raise ServiceUnavailable(Reason.BREAKER_OPEN, self.fal_breaker.retry_after_s())
        await self._check_dependencies()

    async def _check_dependencies(self) -> None:
        """Live checks on every request, as the report does; failures carry the report's messages."""
        deps, timeout = self.deps, self.deps.settings.dependency_check_timeout_s
        try:
            async with upstream_call(deps.metrics, "database", "check"), asyncio.timeout(timeout):
                await deps.db.ping()
        except Exception as error:
            raise RuntimeError(f"Database connection check failed: {error}") from error
        try:
            await deps.fal.check(timeout)
        except Exception as error:
            raise RuntimeError(f"FAL service check failed: {error}") from error
        try:
            async with asyncio.timeout(timeout):
                await deps.storage.check()
        except Exception as error:
            raise RuntimeError(f"Storage service check failed: {error}") from error

    def to_unavailable(self, error: Exception) -> ServiceUnavailable:
        return ServiceUnavailable(reason_from_message(error), self.deps.settings.unavailable_retry_after_s)

    async def fal_output(self, job: FalJob) -> dict[str, Any]:
        """The breaker wraps the whole retried generation: one verdict per generation."""
        try:
            output = await self.with_retries("fal", lambda: self._attempt(job), job)
        except Exception:
            self.fal_breaker.record_failure()
            raise
        self.fal_breaker.record_success()
        return output

    async def _attempt(self, job: FalJob) -> dict[str, Any]:
        """submit + poll + result under one timeout; a request stored by an earlier run is polled once."""
        fal = self.deps.fal
        async with asyncio.timeout(self.deps.settings.fal_attempt_timeout_s):
            request_id, job.fal_request_id = job.fal_request_id, None
            if request_id is None:
                request_id = await fal.submit(job.arguments, job.generation_id)
                await job.save_request_id(request_id)
            return await fal.wait_for_result(request_id)

    async def with_retries(self, dependency: str, operation: Callable[[], Awaitable[T]], job: FalJob) -> T:
        return await self._retried(dependency, self.retry_policy, lambda error: True, operation)


class HardenedProfile(ResilienceProfile):
    """Per-dependency breakers, budgeted jittered retries under a deadline, cached health, typed errors."""

    name = "hardened"

    def __init__(self, deps: Dependencies) -> None:
        s = deps.settings
        policy = BreakerPolicy.hardened(
            s.breaker_failure_threshold, s.breaker_recovery_timeout_s, s.breaker_half_open_max_calls,
            s.breaker_window_s, s.breaker_failure_rate_threshold, s.breaker_min_calls_in_window)
        on_transition = _transition_recorder(deps.metrics)
        breakers = {name: CircuitBreaker(name, policy, on_transition=on_transition)
                    for name in ("fal", "database", "storage")}
        retry_policy = RetryPolicy.hardened(
            s.retry_attempts, s.retry_base_delay_s, s.retry_max_delay_s, s.generation_deadline_s)
        budget = RetryBudget(s.retry_budget_ratio, s.retry_budget_min_per_s, s.retry_budget_ttl_s)
        super().__init__(deps, breakers, retry_policy, budget)

    async def admit(self) -> None:
        if self.fal_breaker.state is BreakerState.OPEN:
            raise ServiceUnavailable(Reason.BREAKER_OPEN, self.fal_breaker.retry_after_s())
        for dependency in ("database", "storage", "fal"):
            if not self.deps.health.is_up(dependency):
                raise DependencyUnavailable(dependency, "last health check failed")

    async def insert(self, new: NewGeneration) -> tuple[dict, bool]:
        """Bounded queue, and a bound per user: the insert itself refuses a new generation once either is full."""
        settings = self.deps.settings
        return await self.query(lambda: self.deps.db.insert_generation(new, settings.max_queue_depth,
                                                                      settings.max_unfinished_per_user))

    def to_unavailable(self, error: Exception) -> ServiceUnavailable | None:
        reason = reason_from_type(error)
        if reason is None:
            return None
        retry_after = self.deps.settings.unavailable_retry_after_s
        if isinstance(error, DependencyUnavailable) and error.dependency in self.breakers:
            retry_after = max(retry_after, self.breakers[error.dependency].retry_after_s())
        return ServiceUnavailable(reason, retry_after)

    async def query(self, call: Callable[[], Awaitable[T]]) -> T:
        """Database breaker + typed errors: connection-level failures become DependencyUnavailable."""
        try:
            async with self.breakers["database"].call(is_failure=_is_connection_error):
                return await super().query(call)
        except BreakerOpenError as error:
            record_rejected(self.deps.metrics, "database", "query")
            raise DependencyUnavailable("database", "circuit open") from error
        except CONNECTION_ERRORS as error:
            raise DependencyUnavailable("database", type(error).__name__) from error

    async def fal_output(self, job: FalJob) -> dict[str, Any]:
        """Each attempt is one breaker call. A fal request stored by an earlier claim is resumed (a crashed
        worker's job may still finish); an attempt that times out gives its request up, so no later attempt
        or claim waits again on a job that may never finish."""

        async def attempt() -> dict[str, Any]:
            async with self.fal_breaker.call(is_failure=_is_transient):
                try:
                    async with asyncio.timeout(self._attempt_timeout(job)) as fal_clock:
                        request_id = await self._usable_request(job, fal_clock)
                        return await self.deps.fal.wait_for_result(request_id)
                except TimeoutError:
                    await self._abandon_request(job)
                    raise

        try:
            return await self.with_retries("fal", attempt, job)
        except BreakerOpenError:
            record_rejected(self.deps.metrics, "fal", "submit")
            raise
        except fal_client.FalClientHTTPError as error:
            if error.status_code in (401, 403):  # not an outage: no retry, no strike, and say so
                raise GenerationFailed(f"FAL refused the service's API key (HTTP {error.status_code}); "
                                       "check FAL_KEY") from error
            raise

    async def _usable_request(self, job: FalJob, fal_clock: asyncio.Timeout) -> str:
        """The stored fal request if fal still knows it; otherwise a new one, stored before it is polled.
        ``fal_clock`` bounds getting the job into FAL, then, restarted, the job itself. Storing the id does
        not count: an attempt timed out while the database was away would give up a request FAL is running."""
        fal, old = self.deps.fal, job.fal_request_id
        if old is not None:
            try:
                await fal.status(old)
                return old
            except fal_client.FalClientHTTPError as error:
                if error.status_code != 404:
                    raise
        request_id = await fal.submit(job.arguments, job.generation_id)
        job.fal_request_id = request_id
        fal_clock.reschedule(None)
        await self._record_request(job, request_id)
        # The job's own time starts once FAL holds it: time spent getting in (fal_client retrying 429s) must
        # not cut the job short, or a job FAL is running gets given up and submitted again.
        fal_clock.reschedule(asyncio.get_running_loop().time() + max(0.0, self._job_timeout(job)))
        return request_id

    async def _record_request(self, job: FalJob, request_id: str) -> None:
        """Store a just-submitted request before polling it, through a database outage: a claim that finds no
        stored request submits anew and FAL takes no idempotency key, so an unsaved request is how a
        generation reaches FAL twice. While the database cannot answer, no other claim can take the row
        either, so the save is retried until the database answers or the generation's deadline passes. If
        the lease went to another claim meanwhile, or the deadline passed, the request is cancelled and
        LeaseLost raised: the next claim replaces it."""
        try:
            async for attempt in tenacity.AsyncRetrying(
                    retry=tenacity.retry_if_exception_type((*CONNECTION_ERRORS, Overloaded)),
                    wait=tenacity.wait_exponential(multiplier=0.1, max=1.0),
                    stop=tenacity.stop_after_delay(max(self.deps.settings.lease_duration_s,
                                                       job.deadline_at - time.monotonic())), reraise=True):
                with attempt:
                    saved = await job.save_request_id(request_id)
        except Exception as error:  # still unstored: this attempt must not go on polling an unrecorded job
            log.warning("could not store the FAL request", extra={"dependency": "database", "error": repr(error)})
            saved = False
        if not saved:
            job.fal_request_id = None
            await self._cancel_within_check_timeout(request_id)
            raise LeaseLost(f"generation {job.generation_id}: its FAL request could not be stored")

    async def _abandon_request(self, job: FalJob) -> None:
        """Cancel the request of a timed-out attempt within a bounded time, then forget it (here and, if the
        database answers, in the row): resuming it would only wait on it again, and a stuck fal job never
        finishes. The cancel comes first: the next attempt submits anew, so a request left running while
        the database is away would reach FAL twice."""
        request_id, job.fal_request_id = job.fal_request_id, None
        if request_id is None:
            return
        await self._cancel_within_check_timeout(request_id)
        with contextlib.suppress(*CONNECTION_ERRORS, Overloaded):  # the next submit's id replaces it anyway
            await job.save_request_id(None)

    async def _cancel_within_check_timeout(self, request_id: str) -> None:
        """Cancel a FAL request we give up, without waiting on a FAL that does not answer."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.deps.settings.dependency_check_timeout_s):
                await _cancel_quietly(self.deps.fal, request_id)

    def _attempt_timeout(self, job: FalJob) -> float:
        timeout = self._job_timeout(job)
        if timeout <= 0:
            raise GenerationFailed("generation deadline exceeded")
        return timeout

    def _job_timeout(self, job: FalJob) -> float:
        """The per-attempt FAL timeout, cut to what is left of the generation's deadline."""
        return min(self.deps.settings.fal_attempt_timeout_s, job.deadline_at - time.monotonic())

    async def with_retries(self, dependency: str, operation: Callable[[], Awaitable[T]], job: FalJob) -> T:
        remaining = job.deadline_at - time.monotonic()
        if remaining <= 0:
            raise GenerationFailed("generation deadline exceeded")
        policy = dataclasses.replace(self.retry_policy, deadline_s=remaining)
        breaker = self.breakers.get(dependency) if dependency != "fal" else None

        async def guarded() -> T:
            if breaker is None:
                return await operation()
            async with breaker.call(is_failure=_is_transient):
                return await operation()

        return await self._retried(dependency, policy, _is_transient, guarded)


def _transition_recorder(metrics: Metrics) -> Callable[[str, BreakerState, BreakerState], None]:
    def record(name: str, old: BreakerState, new: BreakerState) -> None:
        metrics.record_breaker_transition(name, old.value, new.value)
        add_event("breaker.transition", breaker=name, from_state=old.value, to_state=new.value)
        log.warning("breaker %s: %s -> %s", name, old.value, new.value, extra={"dependency": name})
    return record


async def _cancel_quietly(fal: FalGateway, request_id: str) -> None:
    try:
        await fal.cancel(request_id)
    except Exception as error:  # best effort: the job may have finished or be unknown already
        log.info("could not cancel fal request %s: %s", request_id, type(error).__name__)


def _is_connection_error(error: Exception) -> bool:
    return isinstance(error, CONNECTION_ERRORS)


def _is_permanent_http_error(error: BaseException) -> bool:
    """A 4xx other than 408/429 from FAL, or any non-5xx storage answer: retrying cannot help."""
    if isinstance(error, fal_client.FalClientHTTPError):
        return 400 <= error.status_code < 500 and error.status_code not in (408, 429)
    if isinstance(error, httpx.HTTPStatusError):
        return 400 <= error.response.status_code < 500 and error.response.status_code not in (408, 429)
    return False


def _is_transient(error: BaseException) -> bool:
    """Worth retrying, and a strike against the dependency's breaker: not a final answer (a model's own
    error, a 4xx), not a breaker refusal, not a programming error."""
    if isinstance(error, (GenerationFailed, BreakerOpenError, LeaseLost, ValueError, TypeError, KeyError)):
        return False
    return not _is_permanent_http_error(error)


def build_profile(deps: Dependencies) -> ResilienceProfile:
    profiles = {"as_written": AsWrittenProfile, "hardened": HardenedProfile}
    return profiles[deps.settings.profile](deps)
