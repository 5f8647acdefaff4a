"""The locustfile's own command-line arguments and how a scenario and a stack file fill them in.

Every argument also reads an environment variable, so `locust -f loadtests/locustfile.py` works
with nothing but ``GENCHAOS_STACK_FILE`` set. Locust forwards custom arguments from the master to
its workers with every spawn message, so the master resolves everything a worker needs (token
secret, think times, pacing, the flood and its user) and workers need neither the stack file nor
the scenario.
"""

from __future__ import annotations

import functools
import math
import uuid
from dataclasses import dataclass
from pathlib import Path

from chaos.contract.model import Contract, ContractError, default_contract, load_contract
from chaos.run.protocol import GenerationProtocol
from chaos.run.traffic import POLL_INTERVAL_S
from chaos.scenarios.catalogue import ScenarioError, load_catalogue, load_scenario, select
from chaos.scenarios.model import Scenario
from chaos.stack.embedded import StackInfo
from chaos.stack.processes import StackError

DEFAULT_THINK_S = (0.5, 1.5)
DEFAULT_GENERATION_TIMEOUT_S = 30.0
DEFAULT_POLL_INTERVAL_S = 0.1  # a person's client following their generation
# Open-model scenarios (rate_per_s) run each user at one generation every this many seconds.
OPEN_MODEL_USER_INTERVAL_S = 2.0
# A flooding load (load.flood_rate_per_s) is one more user, as in `genchaos run`: one identity, so the
# service's per-user bound is what it meets.
FLOODING_USERS = 1


class LoadSetupError(ValueError):
    """The load test cannot start: a missing stack file, an unknown scenario, a bad setting."""


def add_arguments(parser) -> None:
    """Register the genchaos arguments on Locust's parser (the `init_command_line_parser` event).

    They go on the parser itself, not a group: only those show in the web UI's custom parameters.
    """
    parser.add_argument("--stack-file", env_var="GENCHAOS_STACK_FILE", default="",
                       help="stack file written by `genchaos up`: service URL, token secret, Toxiproxy")
    parser.add_argument("--service", env_var="GENCHAOS_SERVICE", default="",
                       help="the service's contract file (default: the stack file's, else the reference service's)")
    parser.add_argument("--scenario", env_var="GENCHAOS_SCENARIO", default="",
                       help="catalogue scenario whose load and fault timeline to run")
    parser.add_argument("--scenario-file", env_var="GENCHAOS_SCENARIO_FILE", default="",
                       help="scenario YAML file to run instead of a catalogue scenario")
    parser.add_argument("--summary-file", env_var="GENCHAOS_SUMMARY_FILE", default="",
                       help="where to write the JSON SLO summary (default: only logged)")
    parser.add_argument("--generate-weight", type=int, env_var="GENCHAOS_GENERATE_WEIGHT", default=10,
                       help="task weight of submitting a generation and polling it to the end")
    parser.add_argument("--list-weight", type=int, env_var="GENCHAOS_LIST_WEIGHT", default=1,
                       help="task weight of listing one's own generations")
    parser.add_argument("--think-min", type=float, env_var="GENCHAOS_THINK_MIN", default=None,
                       help="shortest pause between a user's tasks, seconds (default: the scenario's think_s)")
    parser.add_argument("--think-max", type=float, env_var="GENCHAOS_THINK_MAX", default=None,
                       help="longest pause between a user's tasks, seconds")
    parser.add_argument("--user-pace", type=float, env_var="GENCHAOS_USER_PACE", default=0.0,
                       help="tasks per second per user (constant throughput); 0 uses think times")
    parser.add_argument("--honour-retry-after", action="store_true", env_var="GENCHAOS_HONOUR_RETRY_AFTER",
                       default=False, help="after a 503, wait the Retry-After seconds before the next task")
    parser.add_argument("--poll-interval", type=float, env_var="GENCHAOS_POLL_INTERVAL", default=None,
                       help="seconds between polls of a pending generation (default: a scenario's load polls "
                            f"as `genchaos run` does, every {POLL_INTERVAL_S:g} s; otherwise {DEFAULT_POLL_INTERVAL_S:g} s)")
    parser.add_argument("--generation-timeout", type=float, env_var="GENCHAOS_GENERATION_TIMEOUT", default=None,
                       help="seconds after which a generation not yet terminal counts as lost")
    parser.add_argument("--flood-rate", type=float, env_var="GENCHAOS_FLOOD_RATE", default=0.0,
                       help="POSTs per second of one more user who floods (submits only, never polls), on top "
                            "of --users; 0 for none (default: the scenario's load.flood_rate_per_s)")
    parser.add_argument("--flood-user", env_var="GENCHAOS_FLOOD_USER", default="", include_in_web_ui=False,
                       help="the flooding user's id, its token's subject (default: a new one per Locust run)")
    parser.add_argument("--jwt-secret", env_var="GENCHAOS_JWT_SECRET", default="", include_in_web_ui=False,
                       help="secret to mint user tokens with (default: from the stack file)")
    parser.add_argument("--jwt-issuer", env_var="GENCHAOS_JWT_ISSUER", default="", include_in_web_ui=False,
                       help="issuer of minted user tokens (default: from the stack file)")


@dataclass
class LoadPlan:
    """What the master (or the single local runner) resolved: the stack and the scenario, if any."""

    stack: StackInfo | None
    scenario: Scenario | None


def find_scenario(name: str, path: str) -> Scenario | None:
    """The scenario named in the catalogue or read from a file; neither given is no scenario."""
    if name and path:
        raise LoadSetupError("give --scenario or --scenario-file, not both")
    try:
        if path:
            return load_scenario(Path(path))
        if name:
            return select(load_catalogue(), [name])[0]
    except ScenarioError as exc:
        raise LoadSetupError(str(exc)) from exc
    return None


def resolve(environment) -> LoadPlan:
    """Fill unset options from the stack file and the scenario; raise LoadSetupError on bad input.

    ``environment.parsed_options`` is updated in place (Locust forwards it to workers), and so are
    the environment's host and stop timeout. Explicit ``--users``, ``--spawn-rate``, ``--run-time``
    and ``--stop-timeout`` win over the scenario's load.
    """
    options = environment.parsed_options
    try:
        stack = StackInfo.load(options.stack_file) if options.stack_file else None
    except StackError as exc:
        raise LoadSetupError(str(exc)) from exc
    scenario = find_scenario(options.scenario, options.scenario_file)
    try:
        service_contract(getattr(options, "service", "") or (stack.contract if stack else "") or "")
    except ContractError as exc:
        raise LoadSetupError(str(exc)) from exc

    if stack is not None:
        options.service = getattr(options, "service", "") or stack.contract or ""
        options.jwt_secret = options.jwt_secret or stack.jwt_secret
        options.jwt_issuer = options.jwt_issuer or stack.jwt_issuer
        environment.host = options.host = environment.host or stack.service_url
    if not options.jwt_secret or not options.jwt_issuer:
        raise LoadSetupError("no way to mint user tokens: give --stack-file (or GENCHAOS_STACK_FILE) of a "
                             "running stack, or --jwt-secret and --jwt-issuer")
    if not environment.host:
        raise LoadSetupError("no target: give --stack-file (or GENCHAOS_STACK_FILE) or --host")
    # picked here, once, and forwarded to the workers: wherever the flooding user is spawned, it is one user
    options.flood_user = options.flood_user or str(uuid.uuid4())
    if scenario is not None and scenario.faults and stack is None:
        raise LoadSetupError(f"scenario {scenario.name!r} has a fault timeline: give --stack-file so the "
                             "master can reach Toxiproxy and the FAL emulator")
    if scenario is not None:
        _fill_from_scenario(options, scenario)
    _fill_defaults(options)
    _check(options)
    if not environment.stop_timeout:
        # let users finish the generation they are following when the load ends or is reduced
        environment.stop_timeout = options.stop_timeout = options.generation_timeout + options.poll_interval + 1
    return LoadPlan(stack=stack, scenario=scenario)


@functools.cache
def service_contract(contract_path: str) -> Contract:
    """The contract at ``contract_path`` (empty: the reference service's), read once per process;
    workers read the path the master forwarded."""
    return load_contract(contract_path) if contract_path else default_contract()


def generation_protocol(contract_path: str) -> GenerationProtocol:
    """How to speak to the service of the contract at ``contract_path``."""
    return GenerationProtocol(service_contract(contract_path))


def flooding_users(options) -> int:
    """How many flooding users run beside ``--users`` (loadtests/shape.py adds them): one, or none."""
    return FLOODING_USERS if options.flood_rate else 0


def _fill_from_scenario(options, scenario: Scenario) -> None:
    load = scenario.load
    if load.flood_rate_per_s and not options.flood_rate:
        options.flood_rate = load.flood_rate_per_s
    if options.num_users is None:
        options.num_users = load.clients or math.ceil(load.rate_per_s * OPEN_MODEL_USER_INTERVAL_S)
    if load.rate_per_s is not None and not options.user_pace:
        # the pace counts every task; the scenario's rate counts generations, which get their weight's share
        tasks_per_generation = (options.generate_weight + options.list_weight) / max(options.generate_weight, 1)
        options.user_pace = load.rate_per_s * tasks_per_generation / options.num_users
    if options.spawn_rate is None:
        # every user at once, the flooding one too, so the load runs at full rate from the start (paced
        # users spread their own arrivals over one interval, loadtests/users.py)
        options.spawn_rate = float(options.num_users + flooding_users(options))
    if options.run_time is None:
        options.run_time = math.ceil(load.duration_s)
    if options.think_min is None and options.think_max is None:
        options.think_min = options.think_max = load.think_s
    if options.generation_timeout is None:
        options.generation_timeout = max(load.drain_s, 1.0)
    if options.poll_interval is None:
        # the scenario's checks were set for `genchaos run`'s traffic; polling more often costs every
        # generation time on a busy machine (fair_share's p95 went from 4 s to 13 s at 0.1 s)
        options.poll_interval = POLL_INTERVAL_S


def _fill_defaults(options) -> None:
    if options.think_min is None and options.think_max is None:
        options.think_min, options.think_max = DEFAULT_THINK_S
    elif options.think_min is None:
        options.think_min = options.think_max
    elif options.think_max is None:
        options.think_max = options.think_min
    if options.generation_timeout is None:
        options.generation_timeout = DEFAULT_GENERATION_TIMEOUT_S
    if options.poll_interval is None:
        options.poll_interval = DEFAULT_POLL_INTERVAL_S


def _check(options) -> None:
    problems = []
    if options.generate_weight < 0 or options.list_weight < 0 or options.generate_weight + options.list_weight == 0:
        problems.append("--generate-weight and --list-weight must be >= 0 and not both 0")
    if not 0 <= options.think_min <= options.think_max:
        problems.append(f"think times must satisfy 0 <= --think-min ({options.think_min:g}) "
                        f"<= --think-max ({options.think_max:g})")
    if options.user_pace < 0:
        problems.append("--user-pace must be >= 0")
    if options.flood_rate < 0:
        problems.append("--flood-rate must be >= 0")
    if options.poll_interval <= 0:
        problems.append("--poll-interval must be > 0")
    if options.generation_timeout <= 0:
        problems.append("--generation-timeout must be > 0")
    if problems:
        raise LoadSetupError("; ".join(problems))
