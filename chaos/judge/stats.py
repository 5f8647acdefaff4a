"""Statistical verdicts: a rate observed on n requests is judged by its 95% Wilson interval, so a
small sample reads ``inconclusive`` (with the n that would decide it) instead of ``held``.

Bounds at 0 or 1 (``rate_500 <= 0``: "no 500 at all") are statements about what happened, not
estimates of a rate: they are judged on the counts, exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

Z_95 = 1.959963984540054
MAX_N_NEEDED = 1_000_000


class Status(str, Enum):
    """The verdicts a check or a claim can reach; unmeasured when its evidence was not to be had."""

    HELD = "held"
    NOT_HELD = "not held"
    INCONCLUSIVE = "inconclusive"
    UNMEASURED = "unmeasured"


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion; (0, 1) when there is no sample."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class RateVerdict:
    """A rate judged against a bound: status, the sample, its interval and, if inconclusive, the n
    that would decide it at the observed rate (None when no n would: the rate sits on the bound)."""

    status: Status
    successes: int
    n: int
    interval: tuple[float, float]
    n_needed: int | None = None

    def describe(self) -> str:
        rate = "n/a" if not self.n else f"{self.successes / self.n:.3f}"
        low, high = self.interval
        text = f"{rate} (n={self.n}, 95% CI {low:.3f}–{high:.3f})"
        if self.status is Status.INCONCLUSIVE:
            needed = f"n needed: {self.n_needed}" if self.n_needed else "n needed: more than the rate allows"
            text += f"; inconclusive, {needed}"
        return text


def _status(successes: int, n: int, minimum: float | None, maximum: float | None) -> Status:
    low, high = wilson_interval(successes, n)
    violated = (minimum is not None and high < minimum) or (maximum is not None and low > maximum)
    satisfied = (minimum is None or low >= minimum) and (maximum is None or high <= maximum)
    if violated:
        return Status.NOT_HELD
    return Status.HELD if satisfied else Status.INCONCLUSIVE


def _n_needed(successes: int, n: int, minimum: float | None, maximum: float | None) -> int | None:
    """The smallest sample that, at the observed rate, would make the verdict conclusive."""
    if not n:
        return None
    p = successes / n
    size = n
    while size < MAX_N_NEEDED:
        size *= 2
        if _status(round(p * size), size, minimum, maximum) is not Status.INCONCLUSIVE:
            low, high = size // 2, size
            while low + 1 < high:
                middle = (low + high) // 2
                decided = _status(round(p * middle), middle, minimum, maximum) is not Status.INCONCLUSIVE
                low, high = (low, middle) if decided else (middle, high)
            return high
    return None


def is_exact_bound(minimum: float | None, maximum: float | None) -> bool:
    """Bounds at 0 or 1 are judged on counts: 'none at all' or 'every one'."""
    return (minimum is not None and minimum >= 1) or (maximum is not None and maximum <= 0)


def smallest_deciding_sample(minimum: float | None, maximum: float | None) -> int | None:
    """The fewest requests on which a rate check can hold at all: every one a success against a minimum,
    none against a maximum. A check whose phase gets fewer can only ever be inconclusive. None for a
    bound on both sides, which no single perfect outcome meets."""
    if is_exact_bound(minimum, maximum):
        return 1
    if minimum is not None and maximum is not None:
        return None
    n = 1
    while _status(n if minimum is not None else 0, n, minimum, maximum) is not Status.HELD:
        n += 1
    return n


def judge_rate(successes: int, n: int, minimum: float | None = None, maximum: float | None = None) -> RateVerdict:
    """Judge ``successes / n`` against ``minimum`` and/or ``maximum``."""
    interval = wilson_interval(successes, n)
    if n == 0:
        return RateVerdict(Status.INCONCLUSIVE, 0, 0, interval, None)
    if is_exact_bound(minimum, maximum):
        p = successes / n
        ok = (minimum is None or p >= minimum) and (maximum is None or p <= maximum)
        return RateVerdict(Status.HELD if ok else Status.NOT_HELD, successes, n, interval)
    status = _status(successes, n, minimum, maximum)
    needed = _n_needed(successes, n, minimum, maximum) if status is Status.INCONCLUSIVE else None
    return RateVerdict(status, successes, n, interval, needed)


def worst(statuses: list[Status]) -> Status:
    """Not held beats inconclusive beats held; no status at all is inconclusive."""
    if not statuses:
        return Status.INCONCLUSIVE
    for status in (Status.NOT_HELD, Status.INCONCLUSIVE):
        if status in statuses:
            return status
    return Status.HELD
