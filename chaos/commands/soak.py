"""`genchaos soak`: a long run under Locust load with a rotating fault timeline and kill -9 of the
service and of PostgreSQL, for any service a contract describes (--service, --service-url); exit 0
when nothing was lost, duplicated or orphaned and nothing grew beyond its bounds, 1 when not (or when
the evidence could not decide), 2 on a usage or set-up error, 130 when interrupted."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chaos.commands.service_option import add_service_options, chosen_contract
from chaos.commands.signals import install_interrupt_handlers
from chaos.contract.model import ContractError
from chaos.scenarios.catalogue import ScenarioError
from chaos.soak import report
from chaos.soak.growth import MB, METRICS
from chaos.soak.runner import SoakOptions, SoakResult, run_soak
from chaos.soak.verdict import HELD
from chaos.stack.faults import FaultError
from chaos.stack.processes import StackError

EXIT_HELD, EXIT_NOT_HELD, EXIT_SETUP, EXIT_INTERRUPTED = 0, 1, 2, 130
DURATION = re.compile(r"^(?:(\d+)|(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?)$")
MIN_DURATION_S, MAX_DURATION_S = 30, 24 * 3600
MIN_KILL_EVERY_S = 5
MAX_USERS = 200
VERDICT_STYLES = {"held": "green", "not held": "red", "inconclusive": "yellow", "unmeasured": "dim"}


def duration(text: str, minimum: float = MIN_DURATION_S) -> float:
    """Seconds of a duration like 90, 60s, 10m or 1h30m, within the allowed range."""
    match = DURATION.match(text or "")
    if not text or not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90, 60s, 10m or 1h30m")
    plain, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    value = plain + 3600 * hours + 60 * minutes + seconds
    if not minimum <= value <= MAX_DURATION_S:
        raise argparse.ArgumentTypeError(f"{text} must be between {minimum:g}s and {MAX_DURATION_S // 3600}h")
    return float(value)


def _kill_every(text: str) -> float:
    return duration(text, minimum=MIN_KILL_EVERY_S)


def _calm(text: str) -> float:
    return duration(text, minimum=0)


def _users(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if not 1 <= value <= MAX_USERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_USERS}, not {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "soak", help="long run under load with rotating faults and kill -9 of the service and the database",
        description="Run Locust against the embedded stack around the contract's service (its hardened profile "
                    "where it has one, fast timing) while the faults of the ci scenarios rotate and the service and "
                    "PostgreSQL are killed with SIGKILL in turn; then account for every accepted generation through "
                    "the contract's API and the dependencies' logs, and judge every process's resource growth. "
                    "Writes soak.json and soak.html to --out; exit 0 if the verdict held, 1 if not, 2 on bad input.")
    parser.add_argument("--duration", type=duration, default=600.0, help="how long the load runs (default 10m)")
    parser.add_argument("--kill-every", type=_kill_every, default=20.0,
                        help="seconds between kills, alternating service and PostgreSQL (default 20s)")
    parser.add_argument("--calm-last", type=_calm, default=None, metavar="DURATION",
                        help="the last part of the load runs without kills (faults go on), so the service and "
                             "PostgreSQL are also judged over a long lifetime (default: a quarter of --duration)")
    parser.add_argument("--users", type=_users, default=8, help="concurrent Locust users (default 8)")
    parser.add_argument("--out", type=Path, default=Path("reports/soak"),
                        help="directory for soak.json, soak.html and Locust's reports (default reports/soak)")
    parser.add_argument("--seed", type=int, default=1729, help="seed of the fault order and kill timing (default 1729)")
    add_service_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True, soft_wrap=True, log_path=False)
    install_interrupt_handlers()
    calm_s = args.duration / 4 if args.calm_last is None else args.calm_last
    if calm_s >= args.duration:
        console.print(f"genchaos soak: error: --calm-last ({calm_s:g}s) must be shorter than --duration "
                      f"({args.duration:g}s)")
        return 2
    options = SoakOptions(duration_s=args.duration, kill_every_s=args.kill_every, users=args.users,
                          out=args.out.resolve(), seed=args.seed, calm_s=calm_s)
    try:
        result = run_soak(options, chosen_contract(args), log=lambda line: console.log(line))
        json_path, html_path = report.write(result, options.out)
    except (StackError, FaultError, ScenarioError, ContractError, OSError) as exc:
        console.print(f"genchaos soak: {exc}", style="red", markup=False)
        return EXIT_SETUP
    except KeyboardInterrupt:
        console.print("[yellow]genchaos soak: interrupted; every process stopped, every fault rolled back[/yellow]")
        return EXIT_INTERRUPTED
    _print(result, console)
    console.print(f"reports: {json_path}, {html_path}")
    return EXIT_HELD if result.verdict == HELD else EXIT_NOT_HELD


def _print(result: SoakResult, console: Console) -> None:
    ledger, kills = result.ledger, report.kill_counts(result)
    counts = Table(title="generations")
    for column in ("accepted", "completed", "failed", "lost", "submitted twice", "stored objects", "orphaned",
                   "without object", "taken on without a 202"):
        counts.add_column(column, justify="right")
    counts.add_row(*map(str, (ledger.accepted, ledger.completed, ledger.failed, ledger.lost, ledger.submitted_twice,
                              ledger.stored_objects, ledger.orphaned_objects, ledger.missing_objects,
                              ledger.unacknowledged)))
    console.print(counts)
    console.print(f"kills: {kills['total']} ({kills['service']} service, {kills['postgres']} PostgreSQL, "
                  f"{kills['not_back']} not back); faults held: {len(result.faults)}; drain {result.drain_s:g}s")
    growth = Table(title="resources (median of the second fifth -> last fifth of each judged lifetime)")
    for column in ("component", "lifetimes", "memory MB (PSS)", "open fds per process", "connections", "held"):
        growth.add_column(column)
    for component in sorted({g.component for g in result.growth}):
        judged = [g for g in result.growth if g.component == component and g.held is not None]
        by_metric = {m: [g for g in judged if g.metric == m] for m in METRICS}
        last = {m: (gs[-1].baseline, gs[-1].final) for m, gs in by_metric.items() if gs}
        memory = last.get("memory_bytes")
        growth.add_row(component, str(len(by_metric["memory_bytes"])),
                       f"{memory[0] / MB:.0f} -> {memory[1] / MB:.0f}" if memory else "–",
                       *(f"{last[m][0]:.3g} -> {last[m][1]:.3g}" if m in last else "–" for m in METRICS[1:]),
                       "yes" if judged and all(g.held for g in judged) else ("NO" if judged else "too short"))
    console.print(growth)
    for check in result.checks:
        console.print(f"  [{VERDICT_STYLES[check.verdict]}]{check.verdict}[/] {escape(check.name)}: "
                      f"{escape(check.observed)}", highlight=False)
    console.print(f"soak verdict on {result.service} ({result.profile} profile): "
                  f"[{VERDICT_STYLES[result.verdict]}]{result.verdict.upper()}[/]")
