"""`genchaos scenarios`: the catalogue, one line per scenario (or, with --metrics, every metric a check
can name, from the one registry the checks are validated against)."""

from __future__ import annotations

import argparse
import sys

from chaos.judge.registry import METRICS
from chaos.scenarios.catalogue import ScenarioError, load_catalogue


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scenarios", help="list the scenario catalogue",
                                   description="List every catalogue scenario: name, suites, timing, "
                                               "profiles, duration and what it does.")
    parser.add_argument("--metrics", action="store_true",
                        help="list the metrics a check can name instead: scope, kind and meaning")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.metrics:
        for metric in METRICS.values():
            print(f"{metric.name:<36} {metric.scope:<8} {metric.kind:<8} {metric.meaning}")
        return 0
    try:
        catalogue = load_catalogue()
    except ScenarioError as exc:
        print(f"genchaos scenarios: {exc}", file=sys.stderr)
        return 2
    for scenario in catalogue.values():
        suites = ",".join(["full", *scenario.suites])
        print(f"{scenario.name:<30} {suites:<8} {scenario.timing:<6} {'+'.join(scenario.profiles):<15} "
              f"{scenario.load.duration_s:>5g}s  {scenario.description}")
    return 0
