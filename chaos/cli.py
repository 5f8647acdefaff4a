"""`genchaos`: one argparse subcommand per module in chaos/commands/."""

from __future__ import annotations

import argparse
import sys

from chaos.commands import diff, env, load, run, scenarios, soak, toxiproxy, up

COMMANDS = (up, env, run, load, toxiproxy, scenarios, diff, soak)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genchaos",
        description="Chaos tests and load tests for image-generation services (the reference one, or yours through its contract).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; argparse exits 2 on usage errors."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
