"""Resource growth of each process lifetime: the median of the last fifth of its samples against the
median of its second fifth (the first fifth is warm-up: imports, pools filling, caches). Samples
taken while a killed process was down are left out: every process's connections and descriptors
drop then, which is no steady state. A lifetime with too few samples is reported, not judged.

Descriptors are judged per process of the family: a PostgreSQL server whose client's pool opens two
more connections gains two backends of a few dozen descriptors each, which is no leak (the
connections metric, judged in total, is where a leaking pool shows). Memory is PSS in total: a new
backend adds only its private pages.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from chaos.soak.resources import ResourceSample

MB = 1024 * 1024


@dataclass(frozen=True)
class GrowthBounds:
    """Growth allowed over one lifetime; the defaults are the soak's stated bounds."""

    memory_ratio: float = 0.25
    memory_slack_bytes: int = 20 * MB
    fds: int = 50
    connections: int = 50
    min_samples: int = 10
    long_lifetime_share: float = 0.2  # each component must be judged over one lifetime this share of the run

    def limit(self, metric: str, baseline: float) -> float:
        if metric == "memory_bytes":
            return baseline * (1 + self.memory_ratio) + self.memory_slack_bytes
        return baseline + (self.fds if metric == "open_fds_per_process" else self.connections)

    def describe(self) -> str:
        return (f"memory (PSS) +{self.memory_ratio:.0%} + {self.memory_slack_bytes / MB:g} MB, open fds per process "
                f"+{self.fds}, "
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
    """What the bound applies to: descriptors per process of the family, the rest in total."""
    if metric == "open_fds_per_process":
        return sample.open_fds / max(1, sample.processes)
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
        for metric in METRICS:
            if n < bounds.min_samples:
                results.append(Growth(component, pid, metric, n, *span, None, None, None, None))
                continue
            fifth = n // 5
            baseline = statistics.median(judged_value(s, metric) for s in lifetime[fifth:2 * fifth])
            final = statistics.median(judged_value(s, metric) for s in lifetime[n - fifth:])
            limit = bounds.limit(metric, baseline)
            results.append(Growth(component, pid, metric, n, *span, baseline, final, limit, final <= limit))
    return results
