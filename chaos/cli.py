"""`genchaos`: one argparse subcommand per module in chaos/commands/."""

from __future__ import annotations

import argparse
import signal
import sys


def build_parser() -> argparse.ArgumentParser:
    from chaos.commands import diff, env, load, run, scenarios, soak, toxiproxy, up  # see main

    parser = argparse.ArgumentParser(
        prog="genchaos",
        description="Chaos tests and load tests for image-generation services (the reference one, or yours through its contract).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (up, env, run, load, toxiproxy, scenarios, diff, soak):
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; argparse exits 2 on usage errors.

    Ctrl-C interrupts from the first moment even when SIGINT came ignored (as to a background job): the
    commands take a second to import, and one sent meanwhile would be lost before a long-running command
    installs its own handlers."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
