"""`genchaos load`: Locust, headless, with a scenario's load and fault timeline, gated by its SLOs.

Locust runs in child processes (it patches the standard library with gevent on import): one
master, or a single local runner, and ``--workers K`` worker processes on this machine. The
exit code is the SLO gate's: 0 pass, 1 fail, 2 usage or set-up error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from chaos.commands.service_option import chosen_contract
from chaos.commands.signals import install_interrupt_handlers
from chaos.contract.model import ContractError
from chaos.run.locust_command import locust_command, locustfile
from chaos.scenarios.catalogue import ScenarioError, load_catalogue, load_scenario, select
from chaos.scenarios.model import Scenario
from chaos.stack.embedded import EmbeddedStack, StackInfo
from chaos.stack.processes import ChildProcess, StackError, free_port

EXIT_PASS, EXIT_FAIL, EXIT_SETUP = 0, 1, 2
WORKERS_MAX_WAIT_S = 60
INTERRUPT_GRACE_S = 60.0
RUN_TIME_PATTERN = re.compile(r"^(?:\d+|(?:\d+h)?(?:\d+m)?(?:\d+s)?)$")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _run_time(text: str) -> str:
    if not text or not RUN_TIME_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a run time like 90, 30s, 5m or 1h30m")
    return text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "load", help="Locust load test with a scenario's fault timeline and SLO gate",
        description="Run Locust headless against the embedded stack (or a running one) with a scenario's load "
                    "and fault timeline; write Locust's CSV and HTML reports and the SLO summary to --out; "
                    "exit 0 if the SLO gate passes, 1 if it fails, 2 on a usage or set-up error.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--scenario", help="catalogue scenario (see `genchaos scenarios`)")
    which.add_argument("--scenario-file", type=Path, help="scenario YAML file")
    parser.add_argument("--users", type=_positive_int, help="concurrent Locust users (default: the scenario's)")
    parser.add_argument("--spawn-rate", type=_positive_float, help="users started per second (default: all at once)")
    parser.add_argument("--run-time", type=_run_time,
                        help="how long the load runs, e.g. 30s or 5m (default: the scenario's duration)")
    parser.add_argument("--workers", type=_count, default=0,
                        help="worker processes on this machine under one master (default 0: a single process)")
    parser.add_argument("--out", type=Path, default=Path("reports/load"),
                        help="directory for summary.json, report.html and the CSV files (default: reports/load)")
    parser.add_argument("--stack-file", type=Path, help="use the stack `genchaos up` runs instead of starting one")
    parser.add_argument("--service", type=Path, metavar="CONTRACT",
                        help="the contract of the service under test (default: the stack file's, else the reference "
                             "service's)")
    parser.set_defaults(handler=run)


def _scenario(args: argparse.Namespace) -> Scenario | None:
    if args.scenario_file:
        return load_scenario(args.scenario_file)
    if args.scenario:
        return select(load_catalogue(), [args.scenario])[0]
    return None


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True, soft_wrap=True)  # paths in messages stay whole
    install_interrupt_handlers()
    try:
        scenario = _scenario(args)
        if scenario is None and not args.run_time:
            raise ScenarioError("without --scenario or --scenario-file, give --run-time (the load would never end)")
        out = args.out.resolve()
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").unlink(missing_ok=True)
        with contextlib.ExitStack() as exits:
            stack_file = _stack(args, scenario, out, exits, console)
            code = _run_locust(args, stack_file, out, exits, console)
    except (ScenarioError, StackError, OSError, ContractError) as exc:
        console.print(f"[red]genchaos load: {exc}[/red]")
        return EXIT_SETUP
    except KeyboardInterrupt:
        console.print("[yellow]genchaos load: interrupted[/yellow]")
        return EXIT_SETUP
    return code


def _stack(args: argparse.Namespace, scenario: Scenario | None, out: Path, exits: contextlib.ExitStack,
           console: Console) -> Path:
    """The stack file of the running stack, or of an embedded stack started for this run."""
    if args.stack_file:
        info = StackInfo.load(args.stack_file)
        if scenario is not None and (info.profile not in scenario.profiles or info.timing != scenario.timing):
            console.print(f"[yellow]note: the running stack serves {info.profile}/{info.timing}; scenario "
                          f"{scenario.name} is written for {'/'.join(scenario.profiles)} with {scenario.timing} "
                          "timing[/yellow]")
        return args.stack_file.resolve()
    contract = chosen_contract(args)
    profiles = [p for p in (scenario.profiles if scenario else ["hardened"]) if p in contract.profiles]
    profile = "hardened" if "hardened" in profiles else (profiles or list(contract.profiles))[0]
    with console.status("starting the embedded stack…"):
        stack = exits.enter_context(EmbeddedStack(
            profile=profile, timing=scenario.timing if scenario else "fast",
            service_env=scenario.service_env if scenario else None, contract=contract))
    stack_file = out / "stack.json"
    stack.info.dump(stack_file)
    exits.callback(stack_file.unlink, missing_ok=True)
    console.print(f"embedded stack up ({profile} profile): service {stack.info.service_url}")
    return stack_file


def _run_locust(args: argparse.Namespace, stack_file: Path, out: Path, exits: contextlib.ExitStack,
                console: Console) -> int:
    argv = locust_command(args, stack_file, out)
    if args.workers:
        port = free_port()
        argv += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                 "--expect-workers", str(args.workers), "--expect-workers-max-wait", str(WORKERS_MAX_WAIT_S)]
        (out / "logs").mkdir(exist_ok=True)
        for index in range(args.workers):
            worker = ChildProcess(f"locust-worker-{index + 1}",
                                  [sys.executable, "-m", "locust", "-f", str(locustfile()), "--worker",
                                   "--master-host", "127.0.0.1", "--master-port", str(port)], log_dir=out / "logs")
            exits.callback(worker.stop)
    # its own session: a Ctrl-C reaches the master through us, once, and the master stops the workers
    master = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    exits.callback(_stop, master)
    try:
        returncode = master.wait()
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping Locust (faults are rolled back)…[/yellow]")
        master.send_signal(signal.SIGINT)
        returncode = _wait(master, INTERRUPT_GRACE_S)
    return _report(out, returncode, console)


def _wait(process: subprocess.Popen, timeout_s: float) -> int | None:
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        return None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        if _wait(process, 10) is None:
            process.kill()
            process.wait()


def _report(out: Path, returncode: int | None, console: Console) -> int:
    """Tell the user the verdict and where the reports are; the exit code comes from the summary."""
    summary_path = out / "summary.json"
    if not summary_path.exists():
        console.print(f"[red]genchaos load: Locust exited with code {returncode} without an SLO summary; "
                      f"see its output above[/red]")
        return EXIT_SETUP
    summary = json.loads(summary_path.read_text())
    passed = summary["verdict"] == "pass"
    console.print(f"SLO gate: {'[green]PASS' if passed else '[red]FAIL'}[/] ({summary['name']}, "
                  f"{summary['profile']} profile)")
    for check in summary["checks"]:
        if not check["passed"]:
            console.print(f"  [red]{check['status']}[/red] "
                          + escape(f"{check['name']}: expected {check['expected']}, observed {check['observed']}"))
    for warning in summary["load_generator"]["warnings"]:
        console.print(f"  [yellow]load generator CPU-bound:[/yellow] {warning}")
    console.print(f"reports: {summary_path}, {out / 'report.html'}, {out}/locust_*.csv")
    return EXIT_PASS if passed else EXIT_FAIL
