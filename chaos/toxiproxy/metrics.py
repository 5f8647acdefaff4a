"""Toxiproxy's Prometheus metrics: bytes received and sent per proxy and direction.

Links count into plain integers on the hot path; the counters are only turned into
Prometheus samples when /metrics is scraped.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from .link import ByteCounters

_LABELS = ["direction", "listener", "proxy", "upstream"]


class ProxyMetrics:
    """Byte counters keyed by (direction, listener, proxy, upstream), as Toxiproxy labels them."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, str, str], ByteCounters] = {}

    def counters(self, direction: str, listener: str, proxy: str, upstream: str) -> ByteCounters:
        key = (direction, listener, proxy, upstream)
        counters = self._counters.get(key)
        if counters is None:
            counters = self._counters[key] = ByteCounters()
        return counters

    def collect(self):
        received = CounterMetricFamily(
            "toxiproxy_proxy_received_bytes", "The total number of bytes received from the client",
            labels=_LABELS)
        sent = CounterMetricFamily(
            "toxiproxy_proxy_sent_bytes", "The total number of bytes sent to the client",
            labels=_LABELS)
        for labels, counters in sorted(self._counters.items()):
            received.add_metric(list(labels), counters.received)
            sent.add_metric(list(labels), counters.sent)
        yield received
        yield sent


def build_registry(proxy_metrics: ProxyMetrics | None, runtime_metrics: bool) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if proxy_metrics is not None:
        registry.register(proxy_metrics)
    if runtime_metrics:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
