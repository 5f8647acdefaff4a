"""`genchaos scenarios`: the catalogue, one line per scenario."""

from __future__ import annotations

import argparse
import sys

from chaos.scenarios.catalogue import ScenarioError, load_catalogue


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scenarios", help="list the scenario catalogue",
                                   description="List every catalogue scenario: name, suites, timing, "
                                               "profiles, duration and what it does.")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
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
