"""Running the matrix: the unmutated copy and each defect, each its own copy of the service, run through
the same lanes, runner and judge as `genchaos run` (every scenario restarts the service, so a lane's
stack can run one copy's scenario after another's).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.contract.model import Contract
from chaos.lanes import Job, LaneProgress, run_in_lanes
from chaos.mutants.catalogue import Defect
from chaos.mutants.planting import plant
from chaos.scenarios.catalogue import load_catalogue, suite
from chaos.scenarios.model import Scenario

PROFILE = "hardened"  # the profile `make run` gates on
SUITE = "ci"


class MatrixError(ValueError):
    """A matrix that cannot run as asked: an unknown defect, or one naming a scenario the ci suite lacks."""


CheckKey = tuple[str, int]  # (scenario, position of the check in it): check names may repeat per phase


@dataclass
class Outcome:
    """What the scenarios said about one copy of the service (``defect`` None: the unmutated one)."""

    defect: Defect | None
    results: list[Any] = field(default_factory=list)  # ScenarioResult, one per scenario run
    seconds: float = 0.0  # the copy's scenario runs, added up

    @property
    def label(self) -> str:
        return self.defect.name if self.defect else "unmutated"

    def checks(self, passed: bool) -> dict[CheckKey, str]:
        """The checks that passed (or failed) in scenarios that ran to their end, described."""
        return {(r.name, i): f"{r.name}: {c.name} (expected {c.expected}, observed {c.observed})"
                for r in self.results if r.error is None for i, c in enumerate(r.checks) if c.passed is passed}

    def catches(self, control: Outcome) -> list[str]:
        """Failed checks that passed on the unmutated copy: only these show the defect, not the noise or a
        weakness the unmutated service shares. A broken run (e.g. the copy did not start) catches nothing."""
        held = control.checks(passed=True)
        return [text for key, text in self.checks(passed=False).items() if key in held]

    def noise(self, control: Outcome) -> list[str]:
        """Failed checks that failed on the unmutated copy too."""
        held = control.checks(passed=True)
        return [text for key, text in self.checks(passed=False).items() if key not in held]

    def errors(self) -> list[str]:
        return [f"{r.name}: {r.error}" for r in self.results if r.error is not None]

    def unexpected_failures(self, findings: tuple[str, ...]) -> list[str]:
        """Checks this copy failed that are not among the declared findings ("scenario: check"), and errors."""
        failed = [f"{r.name}: {c.name}" for r in self.results if r.error is None for c in r.checks
                  if not c.passed and c.status != "unmeasured"]
        return [text for text in failed if text not in findings] + self.errors()


def ci_scenarios(defects: list[Defect]) -> dict[str, list[Scenario]]:
    """Each defect's scenarios from the ci suite, by defect name; a name outside ci is a MatrixError."""
    ci = {s.name: s for s in suite(SUITE, load_catalogue())}
    chosen = {}
    for defect in defects:
        unknown = [name for name in defect.scenarios if name not in ci]
        if unknown or not defect.scenarios:
            raise MatrixError(f"defect {defect.name}: {', '.join(unknown) or 'no scenario'} "
                              f"is not a scenario of the {SUITE} suite")
        chosen[defect.name] = [ci[name] for name in defect.scenarios]
    return chosen


def union(scenario_lists: list[list[Scenario]]) -> list[Scenario]:
    """Every scenario of the lists once, in first-seen order (what the unmutated copy must pass)."""
    seen: dict[str, Scenario] = {}
    for scenarios in scenario_lists:
        for scenario in scenarios:
            seen.setdefault(scenario.name, scenario)
    return list(seen.values())


def run_matrix(defects: list[Defect], scenarios: dict[str, list[Scenario]], lanes: int,
               on_progress: LaneProgress | None = None, contract: Contract | None = None,
               source: Path | None = None, profile: str = PROFILE) -> tuple[Outcome, list[Outcome]]:
    """Plant each defect in a fresh copy of the service's package ``source`` (default: the reference
    service's; ``contract`` says how to run it), and one copy unmutated, then run every copy's scenarios
    on ``profile`` over ``lanes`` fresh stacks; returns (unmutated, one per defect)."""
    control, outcomes = Outcome(None), [Outcome(d) for d in defects]
    copies = [(control, union(list(scenarios.values())))] + [(o, scenarios[o.label]) for o in outcomes]
    with tempfile.TemporaryDirectory(prefix="genchaos-mutants-") as root:
        jobs, owners = [], []
        for number, (outcome, chosen) in enumerate(copies):
            copy = plant(outcome.defect, Path(root) / f"copy-{number}", source)
            jobs += [Job(scenario, profile, service_root=copy, label=outcome.label) for scenario in chosen]
            owners += [outcome] * len(chosen)
        for outcome, result in zip(owners, run_in_lanes(jobs, lanes, on_progress, contract=contract), strict=True):
            outcome.results.append(result)
            outcome.seconds += result.duration_s
    return control, outcomes
