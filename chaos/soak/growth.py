"""Resource growth of each process lifetime: the median of the last fifth of its samples against the
median of its second fifth (the first fifth is warm-up: imports, pools filling, caches). Samples
taken while a killed process was down are left out: every process's connections and descriptors
drop then, which is no steady state. A lifetime with too few samples is reported, not judged.

Descriptors are judged per process of the family: a PostgreSQL server whose client's pool opens two
more connections gains two backends of a few dozen descriptors each, which is no leak (the
connections metric, judged in total, is where a leaking pool shows). For the same reason a process
may hold up to DESCRIPTORS_PER_CONNECTION more descriptors for each connection it gained: the
Toxiproxy-compatible server holds five for every socket it relays, so a pool that keeps six more
connections through it is not a descriptor leak. Descriptors that grow without connections are.
Memory is PSS in total: a new backend adds only its private pages.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from chaos.soak.resources import ResourceSample

MB = 1024 * 1024

DESCRIPTORS_PER_CONNECTION = 5
"""The most descriptors one open TCP connection holds in a stack process: the Toxiproxy-compatible
server's fast path holds the socket, a duplicate of it, and a pipe's two ends for the direction it
reads, plus a duplicate for the direction it writes (`chaos/toxiproxy/fast_path.py`)."""


@dataclass(frozen=True)
class GrowthBounds:
    """Growth allowed over one lifetime; the defaults are the soak's stated bounds."""

    memory_ratio: float = 0.25
    memory_slack_bytes: int = 20 * MB
    fds: int = 50
    connections: int = 50
    min_samples: int = 10
    long_lifetime_share: float = 0.2  # each component must be judged over one lifetime this share of the run

    def limit(self, metric: str, baseline: float, connections_gained: float = 0.0) -> float:
        """The most ``metric`` may reach from ``baseline``; descriptors may also grow with the
        connections the process gained per process over the same lifetime."""
        if metric == "memory_bytes":
            return baseline * (1 + self.memory_ratio) + self.memory_slack_bytes
        if metric == "open_fds_per_process":
            return baseline + self.fds + DESCRIPTORS_PER_CONNECTION * max(0.0, connections_gained)
        return baseline + self.connections

    def describe(self) -> str:
        return (f"memory (PSS) +{self.memory_ratio:.0%} + {self.memory_slack_bytes / MB:g} MB, open fds per process "
                f"+{self.fds} plus {DESCRIPTORS_PER_CONNECTION} per connection gained, "
                f"connections +{self.connections}, last fifth vs second fifth of each lifetime of at least "
                f"{self.min_samples} samples; each component judged over one lifetime of at least "
                f"{self.long_lifetime_share:.0%} of the load")


METRICS = ("memory_bytes", "open_fds_per_process", "connections")


@dataclass(frozen=True)
class Growth:
    """One metric of one lifetime: held is None when the lifetime was too short to judge."""

    component: str
    pid: int
    metric: str
    samples: int
    start_t: float
    end_t: float
    baseline: float | None
    final: float | None
    limit: float | None
    held: bool | None


def judged_value(sample: ResourceSample, metric: str) -> float:
    """What the bound applies to: descriptors (and the connections that explain them) per process of
    the family, the rest in total."""
    if metric == "open_fds_per_process":
        return sample.open_fds / max(1, sample.processes)
    if metric == "connections_per_process":
        return sample.connections / max(1, sample.processes)
    return getattr(sample, metric)


def amount(metric: str, value: float | None) -> str:
    """A judged value as the verdict and the report show it."""
    if value is None:
        return "–"
    return f"{value / MB:.1f} MB" if metric == "memory_bytes" else f"{round(value, 1):g}"


def lifetimes(samples: list[ResourceSample]) -> dict[tuple[str, int], list[ResourceSample]]:
    grouped: dict[tuple[str, int], list[ResourceSample]] = defaultdict(list)
    for sample in samples:
        grouped[(sample.component, sample.pid)].append(sample)
    return {key: sorted(group, key=lambda s: s.t) for key, group in grouped.items()}


def judge_growth(samples: list[ResourceSample], bounds: GrowthBounds,
                 outages: list[tuple[float, float]] = ()) -> list[Growth]:
    """Growth of each lifetime; ``outages`` are (start, end) spans, in sample time, left out."""
    steady = [s for s in samples if not any(start <= s.t <= end for start, end in outages)]
    results = []
    for (component, pid), lifetime in sorted(lifetimes(steady).items(), key=lambda kv: (kv[0][0], kv[1][0].t)):
        n, span = len(lifetime), (lifetime[0].t, lifetime[-1].t)
        if n < bounds.min_samples:
            results += [Growth(component, pid, metric, n, *span, None, None, None, None) for metric in METRICS]
            continue
        connections_before, connections_after = _fifths(lifetime, "connections_per_process")
        for metric in METRICS:
            baseline, final = _fifths(lifetime, metric)
            limit = bounds.limit(metric, baseline, connections_after - connections_before)
            results.append(Growth(component, pid, metric, n, *span, baseline, final, limit, final <= limit))
    return results


def _fifths(lifetime: list[ResourceSample], metric: str) -> tuple[float, float]:
    """The medians of the second and the last fifth of a lifetime's samples."""
    fifth = len(lifetime) // 5
    return (statistics.median(judged_value(s, metric) for s in lifetime[fifth:2 * fifth]),
            statistics.median(judged_value(s, metric) for s in lifetime[len(lifetime) - fifth:]))
