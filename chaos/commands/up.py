"""`genchaos up`: start the embedded stack, write the stack file, stay up until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import threading
from pathlib import Path

from rich.console import Console

from chaos.commands.service_option import add_service_options, chosen_contract
from chaos.commands.signals import install_interrupt_handlers
from chaos.contract.model import ContractError
from chaos.contract.names import PROFILES, TIMINGS, canonical_profile, canonical_timing
from chaos.stack.embedded import EmbeddedStack
from chaos.stack.processes import StackError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("up", help="start the embedded stack and keep it running",
                                   description="Start PostgreSQL, the emulators, the Toxiproxy-compatible server "
                                               "and the service; write the stack file; stop on Ctrl-C or SIGTERM.")
    parser.add_argument("--stack-file", type=Path, default=Path("stack.json"),
                        help="where to write the stack file (default: ./stack.json)")
    parser.add_argument("--profile", type=canonical_profile, choices=PROFILES,
                        help="resilience profile of the service (default: hardened where the contract offers it; "
                             "'report' is accepted for as_written)")
    parser.add_argument("--timing", type=canonical_timing, choices=TIMINGS, default="real",
                        help="timing preset: the incident report's real numbers or the fast test numbers "
                             "('report' is accepted for real)")
    add_service_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    install_interrupt_handlers()
    try:
        contract = chosen_contract(args)
        with contextlib.ExitStack() as exits:
            with console.status("starting the embedded stack…"):
                stack = exits.enter_context(EmbeddedStack(profile=args.profile, timing=args.timing, contract=contract,
                                                          wait_for_external=False))
            serve_until_signal(stack, args, console)
    except (StackError, ContractError) as exc:
        console.print(f"[red]genchaos up: {exc}[/red]")
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        args.stack_file.unlink(missing_ok=True)
    console.print("stack stopped")
    return 0


def serve_until_signal(stack: EmbeddedStack, args: argparse.Namespace, console: Console) -> None:
    """Write the stack file, tell the user where everything is, and wait for a signal."""
    stack.info.dump(args.stack_file)
    console.print(f"[green]stack up[/green] ({stack.contract.name}, {stack.info.profile} profile, "
                  f"{stack.info.timing} timing)")
    console.print(f"  service   {stack.info.service_url}")
    console.print(f"  toxiproxy {stack.info.toxiproxy_url}  proxies: "
                  + ", ".join(f"{name}={addr}" for name, addr in stack.info.proxies.items()))
    console.print(f"  stack file {args.stack_file.resolve()}   logs {stack.log_dir}")
    if stack.contract.start.url is not None:
        console.print(f"  start your service with: genchaos env --stack-file {args.stack_file}")
    console.print("press Ctrl-C to stop")
    threading.Event().wait()
