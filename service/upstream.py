"""Measuring every call the service makes to a dependency (attempt counter + latency histogram)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from service.metrics import Metrics
from service.telemetry import add_event

TIMEOUT_ERRORS = (TimeoutError, asyncio.CancelledError, httpx.TimeoutException)


@asynccontextmanager
async def upstream_call(metrics: Metrics, dependency: str, operation: str) -> AsyncIterator[None]:
    """Count the body as one call with outcome success, timeout (incl. cancelled by a timeout) or error."""
    started = time.monotonic()
    outcome = "error"
    try:
        yield
        outcome = "success"
    except TIMEOUT_ERRORS:
        outcome = "timeout"
        raise
    finally:
        metrics.upstream_attempts.labels(dependency, operation, outcome).inc()
        metrics.upstream_duration.labels(dependency, operation).observe(time.monotonic() - started)


def record_rejected(metrics: Metrics, dependency: str, operation: str) -> None:
    """A call the breaker refused before it reached the dependency."""
    metrics.upstream_attempts.labels(dependency, operation, "rejected").inc()
    add_event("breaker.rejected", dependency=dependency, operation=operation)
