"""`genchaos env`: the environment a service needs to run on a stack, for a service started by hand
(`export` lines on stdout, and a `.env` file with --dotenv), by its contract's variable names."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

from rich.console import Console

from chaos.commands.service_option import add_service_options, chosen_contract
from chaos.contract import launch
from chaos.contract.model import ContractError
from chaos.stack.embedded import StackInfo
from chaos.stack.processes import StackError

PLAIN_VALUE = re.compile(r"[\w@%+=:,./-]*")  # no blank, quote, $, # or backslash: read alike unquoted everywhere


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("env", help="print the environment a service needs on a running stack",
                                   description="Print `export` lines (and write a .env file) that give a service "
                                               "the stack's addresses and keys by its contract's variable names.")
    parser.add_argument("--stack-file", type=Path, default=Path("stack.json"),
                        help="the stack file `genchaos up` wrote (default: ./stack.json)")
    parser.add_argument("--dotenv", type=Path, metavar="PATH", help="also write the variables to this .env file")
    add_service_options(parser)
    parser.set_defaults(handler=run)


def environment(args: argparse.Namespace) -> dict[str, str]:
    info = StackInfo.load(args.stack_file)
    contract = chosen_contract(args, info.contract)
    return launch.service_environment(contract, info, {})


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        env = environment(args)
    except (StackError, ContractError) as exc:
        console.print(f"genchaos env: {exc}", style="red", markup=False, soft_wrap=True)
        return 2
    for name, value in env.items():
        print(f"export {name}={shlex.quote(value)}")
    if args.dotenv:
        args.dotenv.write_text("".join(f"{name}={_dotenv_value(value)}\n" for name, value in env.items()))
        console.print(f"written to {args.dotenv}")
    return 0


def _dotenv_value(value: str) -> str:
    """A .env value: as it is when it needs no quoting, a form every env-file reader takes (python-dotenv,
    docker compose, `docker run --env-file`, kustomize); else double-quoted with backslashes and quotes
    escaped, which python-dotenv and docker compose read."""
    if PLAIN_VALUE.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
