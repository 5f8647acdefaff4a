"""Two runs' report.json compared: what got worse, what got better, what came and went.

A regression is a check whose status got worse (held -> inconclusive -> not held), a scenario whose
outcome got worse (passed -> inconclusive -> failed -> invalid), a claim that stopped holding, or a
watched metric that moved in its bad direction by more than its tolerance. Only regressions of the
profiles the new run gated fail a comparison: an ungated profile's are findings, as in `genchaos run`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic

from chaos.contract.names import canonical_profile
from chaos.judge.registry import METRICS
from chaos.judge.stats import wilson_interval
from chaos.report.json_report import SCHEMA_VERSION

# 2 is the first schema whose checks carry a status; SCHEMA_VERSION is the newest `genchaos run` writes.
READABLE_SCHEMA_VERSIONS = tuple(range(2, SCHEMA_VERSION + 1))

OUTCOME_RANK = {"passed": 3, "inconclusive": 2, "failed": 1, "invalid": 0}  # invalid proved nothing at all
STATUS_RANK = {"held": 2, "inconclusive": 1, "not held": 0}  # "unmeasured" and "not measured" are outside this order

Kind = Literal["regression", "improvement", "new", "removed", "changed"]


class ReportError(ValueError):
    """A file that is not a report.json this diff reads; the message names the file and the problem."""


# A profile by its current name, so that an older baseline (schema 2 said "report") lines up with a newer run.
Profile = Annotated[str, pydantic.AfterValidator(canonical_profile)]


class _Check(pydantic.BaseModel):
    name: str
    status: Literal["held", "not held", "inconclusive", "unmeasured"]


class _Scenario(pydantic.BaseModel):
    name: str
    profile: Profile
    outcome: Literal["passed", "failed", "inconclusive", "invalid"]
    gated: bool = True
    checks: list[_Check]
    metrics: dict[str, Any]


class _Claim(pydantic.BaseModel):
    claim: str
    profile: Profile
    status: Literal["held", "not held", "inconclusive", "not measured"]


class Report(pydantic.BaseModel):
    """The parts of report.json a comparison reads (profiles under their current names)."""

    schema_version: int
    verdict: str
    gate: list[Profile] = []
    scenarios: list[_Scenario]
    claims: list[_Claim] = []


def load_report(path: Path) -> Report:
    """Read and check one report.json; ReportError says what is wrong with it."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or "schema_version" not in data or "scenarios" not in data:
        raise ReportError(f"{path}: not a genchaos report.json (no schema_version or scenarios)")
    if data["schema_version"] not in READABLE_SCHEMA_VERSIONS:
        readable = ", ".join(map(str, READABLE_SCHEMA_VERSIONS))
        raise ReportError(f"{path}: schema_version {data['schema_version']!r} is not one this diff reads ({readable})")
    try:
        return Report.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise ReportError(f"{path}: not a valid report.json: {where}: {first['msg']}") from None


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How far a metric may move in its bad direction before it counts: by more than ``absolute`` (in
    the metric's units) and by more than ``relative`` times the baseline value."""

    absolute: float = 0.0
    relative: float = 0.0

    def exceeded_by(self, move: float, baseline: float) -> bool:
        return move > self.absolute and move > self.relative * abs(baseline)

    def describe(self, kind: str) -> str:
        parts = [_format(self.absolute, kind)] if self.absolute or not self.relative else []
        return " and ".join(parts + ([f"{self.relative:.0%}"] if self.relative else []))


@dataclasses.dataclass(frozen=True)
class Watch:
    """A metric the comparison watches, the direction that is bad for it and its default tolerance."""

    metric: str
    worse: Literal["higher", "lower"]
    tolerance: Tolerance


WATCHED = {w.metric: w for w in (
    Watch("success_rate", "lower", Tolerance(absolute=0.05)),
    Watch("rate_503", "higher", Tolerance(absolute=0.05)),
    Watch("recovery_s", "higher", Tolerance(absolute=1.0, relative=0.5)),
    Watch("upstream_attempts_per_generation", "higher", Tolerance(absolute=0.25, relative=0.2)),
    Watch("latency_p50_s", "higher", Tolerance(absolute=0.5, relative=0.5)),
    Watch("latency_p95_s", "higher", Tolerance(absolute=1.0, relative=0.5)),
    Watch("latency_p99_s", "higher", Tolerance(absolute=1.0, relative=0.5)),
    Watch("lost_generations", "higher", Tolerance()),
)}


Override = tuple[str, Literal["absolute", "relative"], float]


def parse_tolerance(text: str) -> Override:
    """``METRIC=VALUE``: VALUE in the metric's units (0.05 for a rate, seconds) sets the absolute part
    of the metric's tolerance, ``N%`` (of the baseline value) the relative part."""
    metric, sep, value = text.partition("=")
    if not sep or metric not in WATCHED:
        raise ValueError(f"{text!r}: expected METRIC=VALUE with METRIC one of {', '.join(WATCHED)}")
    try:
        number = float(value.removesuffix("%"))
    except ValueError:
        raise ValueError(f"{text!r}: {value!r} is not a number or a percentage") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{text!r}: a tolerance is a finite number, 0 or more")
    return (metric, "relative", number / 100) if value.endswith("%") else (metric, "absolute", number)


def tolerances(overrides: Iterable[Override]) -> dict[str, Tolerance]:
    """Every watched metric's tolerance: its default, with the overrides applied in order."""
    chosen = {metric: watch.tolerance for metric, watch in WATCHED.items()}
    for metric, part, value in overrides:
        chosen[metric] = dataclasses.replace(chosen[metric], **{part: value})
    return chosen


@dataclasses.dataclass(frozen=True)
class Change:
    """One difference between the runs, as the tables show it. ``scenario`` is None for a claim."""

    kind: Kind
    scenario: str | None
    profile: str
    subject: str
    before: str
    after: str
    gated: bool
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Comparison:
    changes: list[Change] = dataclasses.field(default_factory=list)

    def of_kind(self, *kinds: Kind) -> list[Change]:
        return [c for c in self.changes if c.kind in kinds]

    @property
    def regressions(self) -> list[Change]:
        """The regressions that fail the comparison: those of gated profiles."""
        return [c for c in self.of_kind("regression") if c.gated]

    @property
    def ungated_regressions(self) -> list[Change]:
        return [c for c in self.of_kind("regression") if not c.gated]


def compare(base: Report, new: Report, overrides: Iterable[Override] = ()) -> Comparison:
    """Every change from ``base`` to ``new``: scenario by scenario and profile, then the claims."""
    chosen = tolerances(overrides)
    before = {(s.name, s.profile): s for s in base.scenarios}
    after = {(s.name, s.profile): s for s in new.scenarios}
    changes: list[Change] = []
    for key in [*before, *(k for k in after if k not in before)]:
        old, current = before.get(key), after.get(key)
        if old is None or current is None:
            present = current or old
            changes.append(Change("new" if old is None else "removed", present.name, present.profile, "scenario",
                                  old.outcome if old else "–", current.outcome if current else "–", present.gated))
            continue
        changes += _scenario_changes(old, current, chosen)
    changes += _claim_changes(base.claims, new.claims, set(new.gate))
    return Comparison(changes)


def _ranked(rank: dict[str, int], old: str, new: str) -> Kind | None:
    """regression, improvement or changed (one side outside the ranking); None when the same."""
    if old == new:
        return None
    if old not in rank or new not in rank:
        return "changed"
    return "regression" if rank[new] < rank[old] else "improvement"


def _scenario_changes(old: _Scenario, new: _Scenario, tolerances: dict[str, Tolerance]) -> list[Change]:
    def change(kind: Kind, subject: str, before: str, after: str, note: str = "") -> Change:
        return Change(kind, new.name, new.profile, subject, before, after, new.gated, note)

    changes = []
    if kind := _ranked(OUTCOME_RANK, old.outcome, new.outcome):
        changes.append(change(kind, "outcome", old.outcome, new.outcome))
    old_checks, new_checks = _by_name(old.checks), _by_name(new.checks)
    for name in [*old_checks, *(n for n in new_checks if n not in old_checks)]:
        was, now = old_checks.get(name), new_checks.get(name)
        if was is None or now is None:
            changes.append(change("new" if was is None else "removed", f"check {name}", was or "–", now or "–"))
        elif kind := _ranked(STATUS_RANK, was, now):
            changes.append(change(kind, f"check {name}", was, now))
    for metric, watch in WATCHED.items():
        moved = _metric_change(watch, tolerances[metric], old.metrics, new.metrics)
        if moved:
            kind, note = moved
            changes.append(change(kind, f"metric {metric}", _describe(metric, old.metrics),
                                  _describe(metric, new.metrics), note))
    return changes


def _by_name(checks: list[_Check]) -> dict[str, str]:
    """Status by check name; a name a scenario uses twice gets " #2" on its second check."""
    statuses: dict[str, str] = {}
    seen: Counter[str] = Counter()
    for check in checks:
        seen[check.name] += 1
        statuses[check.name if seen[check.name] == 1 else f"{check.name} #{seen[check.name]}"] = check.status
    return statuses


def _number(metrics: dict[str, Any], name: str) -> float | None:
    value = metrics.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _metric_change(watch: Watch, tolerance: Tolerance, old: dict[str, Any],
                   new: dict[str, Any]) -> tuple[Kind, str] | None:
    """(kind, why) when the metric moved by more than the tolerance (and, for a rate, by more than
    chance explains); a metric measured on one side only is a change, never a regression."""
    was, now = _number(old, watch.metric), _number(new, watch.metric)
    if was is None and now is None:
        return None
    if was is None or now is None:
        return "changed", "measured in the new run only" if was is None else "no longer measured"
    worsening = (now - was) if watch.worse == "higher" else (was - now)
    kind = METRICS[watch.metric].kind
    if not tolerance.exceeded_by(abs(worsening), was):
        return None
    if kind == "rate" and not _rates_differ(was, _number(old, "requests"), now, _number(new, "requests")):
        return None
    sign = "+" if now > was else "−"
    note = f"{sign}{_format(abs(now - was), kind)} (tolerance {tolerance.describe(kind)})"
    return ("regression" if worsening > 0 else "improvement"), note


def _rates_differ(rate_a: float, n_a: float | None, rate_b: float, n_b: float | None) -> bool:
    """Whether two rates differ by more than chance: the 95% Newcombe (hybrid Wilson score) interval
    of their difference excludes 0. Without the sample sizes, any difference counts."""
    if not n_a or not n_b:
        return True
    low_a, high_a = wilson_interval(round(rate_a * n_a), int(n_a))
    low_b, high_b = wilson_interval(round(rate_b * n_b), int(n_b))
    difference = rate_b - rate_a
    low = difference - math.hypot(rate_b - low_b, high_a - rate_a)
    high = difference + math.hypot(high_b - rate_b, rate_a - low_a)
    return low > 0 or high < 0


def _format(value: float, kind: str) -> str:
    if kind == "rate":
        return f"{value * 100:.1f} pp"
    if kind == "seconds":
        return f"{value:.2f} s"
    return f"{value:g}" if kind == "count" else f"{value:.2f}"


def _describe(metric: str, metrics: dict[str, Any]) -> str:
    value = _number(metrics, metric)
    if value is None:
        return "not measured"
    kind = METRICS[metric].kind
    if kind == "rate":
        requests = _number(metrics, "requests")
        return f"{value:.1%}" + (f" (n={requests:g})" if requests else "")
    return _format(value, kind)


def _claim_changes(old: list[_Claim], new: list[_Claim], gate: set[str]) -> list[Change]:
    before = {(c.claim, c.profile): c.status for c in old}
    after = {(c.claim, c.profile): c.status for c in new}
    changes = []
    for claim, profile in [*before, *(k for k in after if k not in before)]:
        was, now = before.get((claim, profile)), after.get((claim, profile))
        if was is None or now is None:
            kind: Kind | None = "new" if was is None else "removed"
        else:
            kind = _ranked(STATUS_RANK, was, now)
        if kind:
            changes.append(Change(kind, None, profile, f"claim {claim}", was or "–", now or "–", profile in gate))
    return changes
