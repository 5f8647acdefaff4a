"""`python -m chaos.mutants [--service CONTRACT --defects FILE] [--only NAME]... [--list]`: plant each
defect in a copy of the service, run the ci scenarios that should catch it, print the matrix and
`caught K/N`. Without --service, the reference service and its catalogue (chaos/mutants/catalogue.py).

Exit 0 only if the unmutated copy fails no check but the findings its defect file declares (none for the
reference service) and every defect is caught; 1 otherwise;
2 when the matrix cannot run as written (an unknown defect or scenario, a snippet the service no longer
has, a stack that cannot start); 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chaos.commands.run import lane_count
from chaos.commands.signals import install_interrupt_handlers
from chaos.contract.model import Contract, ContractError, load_contract
from chaos.judge.verdicts import ScenarioResult
from chaos.lanes import Job, LaneProgress
from chaos.mutants.catalogue import DEFECTS, CatalogueError, Defect, DefectFile, load_defects
from chaos.mutants.matrix import PROFILE, MatrixError, Outcome, ci_scenarios, run_matrix
from chaos.mutants.planting import PatchError, check_applies, service_source
from chaos.scenarios.catalogue import ScenarioError
from chaos.stack.processes import StackError

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos.mutants", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this defect (repeatable); the unmutated copy runs its scenarios")
    parser.add_argument("--list", action="store_true", help="list the defects and exit")
    parser.add_argument("--lanes", type=lane_count, default=1, metavar="N",
                        help="run the copies' scenarios on N fresh stacks side by side (default 1)")
    parser.add_argument("--service", type=Path, metavar="CONTRACT", help="another service's contract")
    parser.add_argument("--defects", type=Path, metavar="FILE", help="that service's defect file (YAML)")
    return parser.parse_args(argv)


def matrix_of(args: argparse.Namespace) -> tuple[Contract | None, DefectFile]:
    """The service and defects the arguments name: the reference ones, or --service with --defects."""
    if (args.service is None) != (args.defects is None):
        raise MatrixError("give --service and --defects together (or neither, for the reference service)")
    if args.service is None:
        return None, DefectFile(package=service_source(), profile=PROFILE, defects=DEFECTS)
    return load_contract(args.service), load_defects(args.defects)


def choose(names: list[str], catalogue: tuple[Defect, ...]) -> list[Defect]:
    known = {d.name: d for d in catalogue}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise MatrixError(f"unknown defect(s) {', '.join(unknown)}; --list shows the catalogue")
    return [known[n] for n in dict.fromkeys(names)] if names else list(catalogue)


def progress_printer(console: Console) -> LaneProgress:
    """A lanes progress callback printing one line per finished scenario, with the copy it ran on."""
    def report(event: str, job: Job, result: ScenarioResult | None) -> None:
        if event == "done" and result is not None:
            style = "green" if result.passed else "red"
            console.print(f"[{style}]{result.verdict:>4}[/{style}] {job.scenario.name} {escape(f'[{job.label}]')}",
                          highlight=False)
    return report


def print_catalogue(console: Console, catalogue: DefectFile) -> None:
    table = Table(title="defects")
    for column in ("defect", "file", "what it breaks", "scenarios"):
        table.add_column(column)
    for d in catalogue.defects:
        table.add_row(d.name, f"{catalogue.package.name}/{d.file}", d.breaks, ", ".join(d.scenarios))
    console.print(table)


def print_matrix(console: Console, control: Outcome, outcomes: list[Outcome], catalogue: DefectFile) -> None:
    table = Table(title=f"mutation matrix ({catalogue.profile} profile)")
    for column in ("defect", "what it breaks", "scenarios", "verdict",
                   "caught by (checks the unmutated copy passes)", "s"):
        table.add_column(column)
    table.add_row("(unmutated)", "nothing but its declared findings", ", ".join(r.name for r in control.results),
                  "[red]FAILS[/]" if control.unexpected_failures(catalogue.findings) else "[green]passes[/]",
                  escape("\n".join([*control.checks(passed=False).values(), *control.errors()])),
                  f"{control.seconds:.0f}")
    for o in outcomes:
        catches, noise = o.catches(control), o.noise(control)
        verdict = "[green]caught[/]" if catches else ("[yellow]error[/]" if o.errors() else "[red]MISSED[/]")
        lines = [escape(c) for c in catches + o.errors()]
        lines += [f"[dim]not counted, fails unmutated too: {escape(n)}[/]" for n in noise]
        table.add_row(o.label, o.defect.breaks, ", ".join(o.defect.scenarios), verdict, "\n".join(lines),
                      f"{o.seconds:.0f}")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Console(width=None if sys.stdout.isatty() else 180)
    progress = Console(stderr=True)
    try:
        contract, catalogue = matrix_of(args)
        if args.list:
            print_catalogue(out, catalogue)
            return EXIT_PASS
        defects = choose(args.only, catalogue.defects)
        for defect in defects:
            check_applies(defect, catalogue.package)
        scenarios = ci_scenarios(defects)
    except (MatrixError, PatchError, ScenarioError, CatalogueError, ContractError) as exc:
        progress.print(f"mutants: {exc}", style="red", markup=False, soft_wrap=True)
        return EXIT_USAGE
    install_interrupt_handlers()
    try:
        control, outcomes = run_matrix(defects, scenarios, args.lanes, progress_printer(progress), contract,
                                       catalogue.package, catalogue.profile)
    except (StackError, PatchError, OSError) as exc:
        progress.print(f"mutants: set-up failed: {exc}", style="red", markup=False, soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        progress.print("mutants: interrupted", style="yellow")
        return EXIT_INTERRUPTED
    print_matrix(out, control, outcomes, catalogue)
    caught = sum(bool(o.catches(control)) for o in outcomes)
    unexpected = control.unexpected_failures(catalogue.findings)
    if catalogue.findings:
        out.print(f"findings the unmutated service has on purpose: {', '.join(catalogue.findings)}", highlight=False)
    out.print(f"caught {caught}/{len(outcomes)}" + (f"; the unmutated service FAILS: {'; '.join(unexpected)}"
                                                    if unexpected else ""), highlight=False)
    return EXIT_PASS if not unexpected and caught == len(outcomes) else EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
