"""`genchaos diff BASE NEW`: what changed between two runs' report.json, as a terminal table or as
GitHub-flavoured markdown for a job summary; exit 1 on a regression of a gated profile, 0 otherwise,
2 when either file is not a report this diff reads."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from rich.console import Console
from rich.table import Table

from chaos.judge.registry import METRICS
from chaos.report.diff import WATCHED, Change, Comparison, Override, ReportError, compare, load_report, parse_tolerance

EXIT_SAME, EXIT_REGRESSED, EXIT_BAD_INPUT = 0, 1, 2
COLUMNS = ("scenario", "profile", "what", "before", "after", "note")



class Section(NamedTuple):
    title: str
    counted_as: str  # one of them, in the headline
    changes: Callable[[Comparison], list[Change]]
    style: str  # the terminal table's title
    folded: bool  # in markdown, inside <details>


SECTIONS = (
    Section("Regressions", "regression", lambda c: c.regressions, "bold red", False),
    Section("Regressions of ungated profiles (findings: they do not fail the diff)", "ungated finding",
            lambda c: c.ungated_regressions, "yellow", True),
    Section("Improvements", "improvement", lambda c: c.of_kind("improvement"), "green", True),
    Section("New, removed and otherwise changed", "other change",
            lambda c: c.of_kind("new", "removed", "changed"), "dim", True),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diff", help="compare two runs' report.json; exit 1 on a regression",
        description="Compare two runs' report.json: checks, scenario outcomes and claims that got worse, and "
                    "watched metrics that moved the bad way by more than their tolerance. Improvements and "
                    "new or removed scenarios are shown too; only regressions of the new run's gated profiles "
                    "fail (exit 1). Exit 2 when a file is not a report this command reads.",
        epilog=_tolerance_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", type=Path, metavar="BASE", help="the baseline run's report.json")
    parser.add_argument("new", type=Path, metavar="NEW", help="the run to judge, its report.json")
    parser.add_argument("--markdown", action="store_true",
                        help="print GitHub-flavoured markdown (for $GITHUB_STEP_SUMMARY) instead of tables")
    parser.add_argument("--tolerance", action="append", default=[], type=_tolerance, metavar="METRIC=VALUE",
                        help="override part of a metric's tolerance: VALUE in the metric's units (0.05 is 5 "
                             "points of a rate; seconds) sets the absolute part, N%% (of the baseline value) "
                             "the relative part (repeatable)")
    parser.set_defaults(handler=run)


def _tolerance(text: str) -> Override:
    try:
        return parse_tolerance(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _tolerance_help() -> str:
    lines = ["watched metrics (a move in the bad direction counts when it exceeds every part of the tolerance;",
             "a rate must also differ by more than chance, judged on the runs' request counts):"]
    for metric, watch in WATCHED.items():
        tolerance = watch.tolerance.describe(METRICS[metric].kind)
        lines.append(f"  {metric:<34} worse when {watch.worse:<7} tolerance {tolerance}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        base, new = load_report(args.base), load_report(args.new)
    except ReportError as exc:
        print(f"genchaos diff: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    comparison = compare(base, new, args.tolerance)
    headline = _headline(comparison, args.base, args.new)
    if args.markdown:
        print(markdown(comparison, headline))
    else:
        print_tables(Console(width=None if sys.stdout.isatty() else 160), comparison, headline)
    return EXIT_REGRESSED if comparison.regressions else EXIT_SAME


def _headline(comparison: Comparison, base: Path, new: Path) -> str:
    counts = [(len(section.changes(comparison)), section.counted_as) for section in SECTIONS]
    found = ", ".join(f"{n} {what}{'s' * (n != 1)}" for n, what in counts if n) or "no differences"
    return f"{new} against {base}: {found}"


def _cells(change: Change) -> list[str]:
    return [change.scenario or "(claim)", change.profile, change.subject, change.before, change.after, change.note]


def print_tables(console: Console, comparison: Comparison, headline: str) -> None:
    """One table per kind of change that occurred, regressions first, then the headline."""
    for section in SECTIONS:
        rows = section.changes(comparison)
        if not rows:
            continue
        table = Table(title=section.title, title_style=section.style, title_justify="left")
        for column in COLUMNS:
            table.add_column(column, overflow="fold")
        for change in rows:
            table.add_row(*_cells(change))
        console.print(table)
    verdict = "[bold red]regressed[/]" if comparison.regressions else "[green]no regression[/]"
    console.print(f"{verdict}: ", end="")
    console.print(headline, markup=False, highlight=False)


def markdown(comparison: Comparison, headline: str) -> str:
    """A job summary: the verdict, the regressions as a table, every other section folded."""
    icon = ":x: **Regressed**" if comparison.regressions else ":white_check_mark: **No regression**"
    parts = ["## genchaos diff", "", f"{icon}: {_escape(headline)}", ""]
    for section in SECTIONS:
        rows = section.changes(comparison)
        if not rows:
            continue
        table = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        table += ["| " + " | ".join(_escape(cell) for cell in _cells(change)) + " |" for change in rows]
        heading = f"{section.title} ({len(rows)})"
        if section.folded:
            parts += [f"<details><summary>{heading}</summary>", "", *table, "", "</details>", ""]
        else:
            parts += [f"### {heading}", "", *table, ""]
    return "\n".join(parts)


def _escape(text: str) -> str:
    """A table cell's text: pipes escaped, HTML's angle brackets and line breaks neutralised."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
