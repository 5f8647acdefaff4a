"""The ``--service`` and ``--service-url`` options every command that runs a service shares: which
contract describes the service under test, and, optionally, where one already runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from chaos.contract.model import Contract, ContractError, Start, default_contract, load_contract


def add_service_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", type=Path, metavar="CONTRACT",
                        help="the contract file of the service under test (default: the reference service's)")
    parser.add_argument("--service-url", metavar="URL",
                        help="a service already running there (started by hand, in a container, ...): the harness "
                             "starts none and only waits for its health path")


def chosen_contract(args: argparse.Namespace, recorded: str | None = None) -> Contract:
    """The contract ``--service`` names, else ``recorded`` (a stack file's), else the reference service's;
    with ``--service-url``, pointed at that URL. ContractError on a bad file."""
    path = args.service or (Path(recorded) if recorded else None)
    contract = load_contract(path) if path else default_contract()
    if getattr(args, "service_url", None):
        url = args.service_url
        if not url.startswith(("http://", "https://")):
            raise ContractError(f"--service-url {url!r} is not an http(s) URL")
        start = Start(url=url, health_path=contract.start.health_path, start_timeout_s=contract.start.start_timeout_s)
        contract = contract.model_copy(update={"start": start})
    return contract
