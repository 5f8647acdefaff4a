"""`genchaos run`: run chaos scenarios on a fresh embedded stack (or a running one), write the reports,
print a summary and the claims table, and exit 0 (every gated verdict passed), 1 (one failed) or
2 (usage or set-up error)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import prometheus_client
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chaos.commands.service_option import add_service_options, chosen_contract
from chaos.commands.signals import install_interrupt_handlers
from chaos.contract.model import Contract, ContractError
from chaos.contract.names import PROFILES, canonical_profile
from chaos.judge.claims import ClaimResult, audit
from chaos.judge.verdicts import ScenarioResult
from chaos.lanes import Job, run_in_lanes
from chaos.report import write_reports
from chaos.run.runner import EmbeddedTarget, RunningTarget
from chaos.scenarios.catalogue import ScenarioError, load_catalogue, load_scenario, select, suite
from chaos.scenarios.model import Scenario
from chaos.stack.embedded import EmbeddedStack, StackInfo
from chaos.stack.faults import FaultController, FaultError
from chaos.stack.processes import StackError
from chaos.suite import ProgressCallback, run_suite

DEFAULT_SUITE = "ci"
EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_LANES = 8
CLAIM_STYLES = {"held": "green", "not held": "bold red", "inconclusive": "yellow", "not measured": "dim"}


class UsageError(ValueError):
    """Arguments that do not make a runnable selection."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run chaos scenarios and write the reports",
                                   description="Run chaos scenarios against both resilience profiles (or one), "
                                               "write report.json, report.html, junit.xml and traces.jsonl.")
    parser.add_argument("--suite", help=f"a suite of the catalogue (default: {DEFAULT_SUITE} when no scenario "
                                        "is named); `genchaos scenarios` lists them")
    parser.add_argument("--scenario", action="append", default=[], metavar="NAME",
                        help="a catalogue scenario by name (repeatable)")
    parser.add_argument("--scenario-file", action="append", default=[], type=Path, metavar="PATH",
                        help="a scenario YAML file outside the catalogue (repeatable)")
    parser.add_argument("--profile", type=canonical_profile, choices=[*PROFILES, "both"], default="both",
                        help="service profile(s) to run; both: every profile the contract offers "
                             "('report' is accepted for as_written)")
    parser.add_argument("--gate", type=canonical_profile, choices=[*PROFILES, "all"], default="all",
                        help="whose verdicts decide the exit code (default: every profile run)")
    add_service_options(parser)
    parser.add_argument("--out", type=Path, default=Path("reports/latest"), help="report directory")
    parser.add_argument("--stack-file", type=Path, help="run on this running stack instead of a fresh one")
    parser.add_argument("--lanes", type=lane_count, default=1, metavar="N",
                        help="run the scenarios on N fresh embedded stacks side by side, each its own "
                             "PostgreSQL, emulators and Toxiproxy (default 1); not with --stack-file or "
                             "--metrics-port")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve the harness's metrics (genchaos_fault_active, for the dashboards' fault "
                             "windows) on 127.0.0.1:PORT while the run lasts")
    parser.set_defaults(handler=run)


def lane_count(text: str) -> int:
    """--lanes: a whole number from 1 to 8."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_LANES:
        raise argparse.ArgumentTypeError(f"--lanes takes a whole number from 1 to {MAX_LANES}, not {text!r}")
    return int(text)


def choose_scenarios(args: argparse.Namespace) -> list[Scenario]:
    """The scenarios the arguments name, in order, without duplicates."""
    catalogue = load_catalogue()
    chosen: list[Scenario] = []
    if args.suite or not (args.scenario or args.scenario_file):
        chosen += suite(args.suite or DEFAULT_SUITE, catalogue)
    chosen += select(catalogue, args.scenario)
    chosen += [load_scenario(path) for path in args.scenario_file]
    unique: dict[str, Scenario] = {}
    for scenario in chosen:
        if scenario.name in unique and unique[scenario.name] != scenario:
            raise UsageError(f"two different scenarios are named {scenario.name!r}")
        unique[scenario.name] = scenario
    return list(unique.values())


def chosen_profiles(args: argparse.Namespace, contract: Contract) -> tuple[list[str], list[str]]:
    """(profiles to run, profiles whose verdicts gate the exit code), among those the contract offers."""
    offered = [p for p in PROFILES if p in contract.profiles]
    if args.profile != "both" and args.profile not in offered:
        raise UsageError(f"--profile {args.profile}: the contract of {contract.name} offers {', '.join(offered)}")
    profiles = offered if args.profile == "both" else [args.profile]
    gated = profiles if args.gate == "all" else [args.gate]
    if not set(gated) <= set(profiles):
        raise UsageError(f"--gate {args.gate} names a profile that --profile {args.profile} does not run")
    return profiles, gated


def check_running_stack_serves(running: RunningTarget, scenarios: list[Scenario], profiles: list[str]) -> None:
    """A running stack's service cannot be reconfigured: refuse, before any traffic, what it cannot serve."""
    for profile in profiles:
        for scenario in scenarios:
            problem = profile in scenario.profiles and running.cannot_serve(profile, scenario.timing,
                                                                             scenario.service_env)
            if problem:
                raise UsageError(f"{scenario.name}: {problem} (run it without --stack-file, or choose --profile)")


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        scenarios = choose_scenarios(args)
        stack_info = StackInfo.load(args.stack_file) if args.stack_file else None
        contract = chosen_contract(args, stack_info.contract if stack_info else None)
        if contract.start.url is not None and stack_info is None:
            raise UsageError("a service running elsewhere needs the stack's addresses first: start the stack with "
                             "`genchaos up --service-url URL`, start the service with the environment "
                             "`genchaos env` prints, then run with --stack-file")
        profiles, gated = chosen_profiles(args, contract)
        running = None
        if stack_info is not None:
            if contract.start.url is not None:
                stack_info.service_url = contract.start.url.rstrip("/")
            running = RunningTarget(stack_info, contract)
            check_running_stack_serves(running, scenarios, profiles)
        if args.lanes > 1 and (running is not None or args.metrics_port is not None):
            raise UsageError("--lanes runs fresh stacks in processes of their own: it cannot use --stack-file, "
                             "and their fault windows cannot be served on --metrics-port")
    except (ScenarioError, UsageError, StackError, ContractError) as exc:
        console.print(f"genchaos run: {exc}", style="red", markup=False, soft_wrap=True)
        return EXIT_USAGE
    install_interrupt_handlers()
    try:
        if args.metrics_port is not None:
            prometheus_client.start_http_server(args.metrics_port, addr="127.0.0.1")
        with contextlib.ExitStack() as exits:
            if running is not None:
                exits.callback(FaultController(running.info.toxiproxy_url).reset)
                traces_files = [running.info.traces_file]
                run_all = functools.partial(run_suite, running, scenarios, profiles)
            elif args.lanes > 1:
                traces_dir = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="genchaos-lanes-")))
                traces_files = [str(traces_dir / f"lane-{k}.jsonl") for k in range(args.lanes)]
                jobs = [Job(s, p) for p in profiles for s in scenarios if p in s.profiles]
                run_all = functools.partial(_run_in_lanes, jobs, args.lanes, traces_dir, contract)
            else:
                with console.status("starting the embedded stack…"):
                    stack = exits.enter_context(EmbeddedStack(contract=contract))
                traces_files = [stack.info.traces_file]
                run_all = functools.partial(run_suite, EmbeddedTarget(stack), scenarios, profiles)
            results = _run_with_progress(console, scenarios, profiles, run_all)
            claims = audit(results)
            report = write_reports(args.out, results, claims, gated, traces_files)
    except (StackError, FaultError, OSError, ContractError) as exc:
        console.print(f"genchaos run: set-up failed: {exc}", style="red", markup=False, soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.print("genchaos run: interrupted; every fault was rolled back", style="yellow")
        return EXIT_INTERRUPTED
    # Logs and CI have no terminal width to go by; 160 columns keep the tables readable there.
    print_summary(Console(width=None if sys.stdout.isatty() else 160), results, claims)
    for claim in report["failed_claims"]:
        console.print(f"gated claim not held: {claim}", style="red", markup=False)
    console.print(f"reports written to {args.out.resolve()}  (gate: {', '.join(gated)}: {report['verdict']})")
    return EXIT_PASS if report["verdict"] == "pass" else EXIT_FAIL


def _run_with_progress(console: Console, scenarios: list[Scenario], profiles: list[str],
                       run_all: Callable[[ProgressCallback], list[ScenarioResult]]) -> list[ScenarioResult]:
    """``run_all`` (given a progress callback) under a progress bar, a line printed per finished run."""
    total = sum(p in s.profiles for s in scenarios for p in profiles)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("chaos scenarios", total=total)

        def on_progress(event: str, scenario: Scenario, profile: str, result: ScenarioResult | None) -> None:
            if event == "start":
                progress.update(task, description=f"{scenario.name} [{profile}]")
                return
            progress.advance(task)
            style = "green" if result.passed else "red"
            progress.console.print(f"[{style}]{result.outcome:>12}[/{style}] {scenario.name} [{profile}]",
                                   highlight=False)

        return run_all(on_progress)


def _run_in_lanes(jobs: list[Job], lanes: int, traces_dir: Path, contract: Contract,
                  on_progress: ProgressCallback) -> list[ScenarioResult]:
    """run_in_lanes, reporting progress as run_suite does (lanes that ran leave lane-K.jsonl in traces_dir)."""
    return run_in_lanes(jobs, lanes, lambda event, job, result: on_progress(event, job.scenario, job.profile, result),
                        traces_dir, contract)


def print_summary(console: Console, results: list[ScenarioResult], claims: list[ClaimResult]) -> None:
    """The summary table (one row per scenario x profile) and the claims table."""
    summary = Table(title="chaos scenarios")
    for column in ("scenario", "profile", "verdict", "requests", "success", "503s", "breaker opened",
                   "recovery s", "FAL attempts/gen", "lost", "failed checks"):
        summary.add_column(column)
    for r in results:
        m = r.metrics
        summary.add_row(
            r.name, r.profile, f"[{'green' if r.passed else 'red'}]{r.outcome}[/]", str(m.get("requests")),
            _pct(m.get("success_rate")), _pct(m.get("rate_503")), str(m.get("breaker_opened")),
            _num(m.get("recovery_s")), _num(m.get("upstream_attempts_per_generation")), str(m.get("lost_generations")),
            "; ".join(f"{c.name}: {c.status}, expected {c.expected}, observed {c.observed}"
                      for c in r.checks if not c.passed))
    console.print(summary)
    _print_telemetry(console, results)
    table = Table(title="the report's claims")
    for column in ("claim", "profile", "held", "evidence"):
        table.add_column(column)
    for c in claims:
        table.add_row(c.claim, c.profile, f"[{CLAIM_STYLES[c.status]}]{c.status}[/]", c.evidence)
    console.print(table)


def _print_telemetry(console: Console, results: list[ScenarioResult]) -> None:
    """What the service said about itself where it disagreed with what happened (the rest is in the HTML
    report); nothing when it never did."""
    rows = [(r, row) for r in results for row in r.telemetry if row["status"] == "not held"]
    if not rows:
        return
    table = Table(title="what the service said, against what happened (disagreements)")
    for column in ("scenario", "profile", "aspect", "the service said", "what happened", "tolerance"):
        table.add_column(column)
    for r, row in rows:
        table.add_row(r.name, r.profile, row["aspect"], f"[red]{row['service_said']}[/]", row["happened"],
                      row["tolerance"])
    console.print(table)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
