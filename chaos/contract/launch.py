"""Starting a service from its contract: the command line and the environment it gets on a stack.

The stack hands the service its dependencies only through the Toxiproxy proxies; the contract says
which variable receives each address and key. The profile's and the timing preset's environment
come next, then a scenario's own settings, which win.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Protocol

from chaos.contract.model import Contract, ContractError

HOST = "127.0.0.1"


class StackInfo(Protocol):
    """What a stack tells a service (chaos.stack.embedded.StackInfo, which comes after this layer)."""

    database_url: str
    fal_url: str
    fal_key: str
    ca_bundle: str
    storage_url: str
    service_key: str
    jwt_secret: str
    jwt_issuer: str
    traces_file: str | None
    profile: str
    timing: str


def stack_values(info: StackInfo) -> dict[str, str | None]:
    """The stack's values by the contract's ``env`` names."""
    fal_host = info.fal_url.removeprefix("https://")
    return {
        "database_url": info.database_url,
        "fal_host": fal_host,
        "fal_run_host": f"{fal_host}/_run",  # the emulator serves fal's run host under /_run
        "fal_key": info.fal_key,
        "ca_bundle": info.ca_bundle,
        "storage_url": info.storage_url,
        "storage_key": info.service_key,
        "jwt_secret": info.jwt_secret,
        "jwt_issuer": info.jwt_issuer,
        "traces_file": info.traces_file,
    }


def stack_environment(contract: Contract, info: StackInfo) -> dict[str, str]:
    """What a service needs to reach this stack, by the contract's variable names (profile and timing aside)."""
    names = contract.env.model_dump(exclude={"fixed"})
    values = stack_values(info)
    env = {name: values[key] or "" for key, name in names.items() if name}
    return {**env, **contract.env.fixed}


def service_environment(contract: Contract, info: StackInfo, settings: dict[str, str]) -> dict[str, str]:
    """The whole environment the harness adds for the service: the stack, the profile, the timing preset
    and a scenario's settings (by the contract's names), in that order of precedence (the last wins)."""
    return {**stack_environment(contract, info), **contract.profile_env(info.profile),
            **contract.preset(info.timing).env, **contract.scenario_settings(settings)[0]}


def command(contract: Contract, port: int) -> list[str]:
    """The contract's command with its placeholders filled in."""
    if contract.start.command is None:
        raise ContractError(f"contract {contract.name!r} names a URL, not a command: the harness cannot start it")
    values = {"{port}": str(port), "{host}": HOST, "{python}": sys.executable}
    argv = []
    for part in contract.start.command:
        for placeholder, value in values.items():
            part = part.replace(placeholder, value)
        argv.append(part)
    return argv


def working_directory(contract: Contract, override: Path | None = None) -> Path:
    """Where the command runs: the contract's cwd, or a copy of the service's source (the mutation matrix)."""
    cwd = Path(override).resolve() if override is not None else contract.workdir
    if not cwd.is_dir():
        raise ContractError(f"contract {contract.name!r}: start.cwd {cwd} is not a directory")
    module = _module(contract.start.command or [])
    if override is not None and module and not (cwd / module.split(".")[0]).is_dir():
        raise ContractError(f"{cwd} holds no {module} package to run")
    return cwd


def _module(argv: list[str]) -> str | None:
    """The module a ``python -m MODULE`` command runs, else None."""
    return argv[argv.index("-m") + 1] if "-m" in argv[:-1] else None


def python_path(cwd: Path) -> str:
    """PYTHONPATH with the working directory first, so its packages win over installed ones, also in any
    interpreter the service itself starts."""
    return os.pathsep.join(filter(None, [str(cwd), os.environ.get("PYTHONPATH")]))


def describe(argv: list[str]) -> str:
    return shlex.join(argv)
