"""Prometheus metrics of the service (names and labels are a contract: docs/architecture.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BREAKER_STATE_VALUES = {"closed": 0, "open": 1, "half_open": 2}


class Metrics:
    """All service metrics on one registry, so several apps (tests, replicas in one process) never clash."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "genchaos_http_requests_total", "HTTP responses", ["route", "method", "status"], registry=r)
        self.http_duration = Histogram(
            "genchaos_http_request_duration_seconds", "Server-side latency", ["route", "method"], registry=r)
        self.http_503 = Counter("genchaos_http_503_total", "503 responses by reason", ["reason"], registry=r)
        self.breaker_state = Gauge(
            "genchaos_breaker_state", "0 closed, 1 open, 2 half-open", ["dependency"], registry=r)
        self.breaker_transitions = Counter(
            "genchaos_breaker_transitions_total", "Breaker state changes",
            ["dependency", "from_state", "to_state"], registry=r)
        self.upstream_attempts = Counter(
            "genchaos_upstream_attempts_total", "Calls made to a dependency",
            ["dependency", "operation", "outcome"], registry=r)
        self.upstream_duration = Histogram(
            "genchaos_upstream_duration_seconds", "Latency of dependency calls", ["dependency", "operation"],
            registry=r)
        self.retries = Counter("genchaos_retries_total", "Retry attempts beyond the first", ["dependency"],
                               registry=r)
        self.retry_budget_exhausted = Counter(
            "genchaos_retry_budget_exhausted_total", "Retries refused by the retry budget", ["dependency"],
            registry=r)
        self.generations = Counter(
            "genchaos_generations_total", "Generations reaching a terminal state", ["status"], registry=r)
        self.generation_duration = Histogram(
            "genchaos_generation_duration_seconds", "Accepted to terminal", ["status"], registry=r,
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200))
        self.queue_depth = Gauge(
            "genchaos_generation_queue_depth", "Generations pending or processing", registry=r)
        self.dependency_up = Gauge(
            "genchaos_dependency_up", "Last dependency check: 1 up, 0 down", ["dependency"], registry=r)
        self.build_info = Gauge("genchaos_build_info", "Build information", ["version", "profile"], registry=r)

    def record_breaker_transition(self, dependency: str, old: str, new: str) -> None:
        self.breaker_transitions.labels(dependency, old, new).inc()
        self.breaker_state.labels(dependency).set(BREAKER_STATE_VALUES[new])
