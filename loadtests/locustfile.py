"""Locust load test of the generation service, with a scenario's fault timeline and an SLO gate.

    locust -f loadtests/locustfile.py --stack-file stack.json [--scenario NAME | --scenario-file PATH]

See the README (Load tests with Locust) for headless, distributed and `genchaos load` runs.
"""

from __future__ import annotations

import logging
import sys

from locust import events
from locust.runners import WorkerRunner

from loadtests.coordinator import Coordinator
from loadtests.options import LoadSetupError, add_arguments, resolve
from loadtests.records import RecordCollector
from loadtests.shape import ScenarioShape
from loadtests.users import FloodingUser, GenerationUser

__all__ = ["FloodingUser", "GenerationUser", "ScenarioShape"]
SETUP_ERROR_EXIT_CODE = 2


@events.init_command_line_parser.add_listener
def _add_arguments(parser, **_kwargs) -> None:
    add_arguments(parser)


@events.test_start.add_listener
def _configure_users(environment, **_kwargs) -> None:
    GenerationUser.configure(environment.parsed_options)


@events.init.add_listener
def _set_up(environment, **_kwargs) -> None:
    """Workers only collect records; the master or local runner also resolves and coordinates."""
    collector = RecordCollector(environment)
    if isinstance(environment.runner, WorkerRunner):
        return
    try:
        plan = resolve(environment)
    except LoadSetupError as exc:
        logging.getLogger("genchaos").error("cannot start the load test: %s", exc)
        sys.exit(SETUP_ERROR_EXIT_CODE)
    Coordinator(environment, plan, collector)
