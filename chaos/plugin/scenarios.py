"""Scenarios from a test: find one by catalogue name or file, run it on a profile's embedded stack with
the suite runner and judge, and turn a verdict that is not a pass into an AssertionError that says
which checks and claims failed, with what was observed against what was expected."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chaos.judge.claims import ClaimResult, audit, failed_claims
from chaos.judge.verdicts import ScenarioResult
from chaos.plugin.stacks import resolve_profile
from chaos.run.runner import EmbeddedTarget
from chaos.scenarios.catalogue import load_catalogue, load_scenario, select
from chaos.scenarios.model import Scenario
from chaos.stack.embedded import EmbeddedStack
from chaos.suite import run_suite

ScenarioRef = str | os.PathLike | Scenario

WHY_NOT_PASSED = {
    "failed": "a check did not hold",
    "inconclusive": "too little evidence to decide: a check saw too few requests to be judged "
                    "(lengthen the run or raise the load)",
    "invalid": "a fault had no visible effect, so the run proved nothing about it",
}


def find_scenario(scenario: ScenarioRef) -> Scenario:
    """A scenario given as a catalogue name, a path to a YAML file (``.yaml``/``.yml``, or any
    os.PathLike), or already loaded; a ScenarioError names an unknown name or a bad file."""
    if isinstance(scenario, Scenario):
        return scenario
    text = os.fspath(scenario)
    if isinstance(scenario, os.PathLike) or text.endswith((".yaml", ".yml")) or os.sep in text:
        return load_scenario(Path(text))
    return select(load_catalogue(), [text])[0]


@dataclass
class ScenarioRun:
    """One scenario's verdict on one profile, with the report's claims judged from it."""

    result: ScenarioResult
    claims: list[ClaimResult]

    @property
    def failed_claims(self) -> list[ClaimResult]:
        return failed_claims(self.claims, [self.result.profile])

    @property
    def passed(self) -> bool:
        """Every check held and no claim reads not held, as `genchaos run` gates a profile."""
        return self.result.passed and not self.failed_claims

    def explain(self) -> str:
        """The verdict, then each check that did not hold and each claim that failed."""
        r = self.result
        if r.error:
            why = "it could not run to the end"
        elif not r.passed:
            why = WHY_NOT_PASSED[r.outcome]
        else:
            why = "every check held, but a claim of the report did not" if self.failed_claims else "every check held"
        lines = [f"scenario {r.name} on profile {r.profile} ({r.timing} timing): {r.outcome}: {why}"]
        for check in r.checks:
            if not check.passed:
                sample = f" (judged on {check.n} requests)" if check.n is not None and "n=" not in str(check.observed) else ""
                lines.append(f"  {check.status}: {check.name}: observed {check.observed}, "
                             f"expected {check.expected}{sample}")
        lines += [f"  claim not held: {claim.claim}: {claim.evidence}" for claim in self.failed_claims]
        return "\n".join(lines)

    def assert_passed(self) -> None:
        """Raise an AssertionError carrying ``explain()`` unless the scenario passed."""
        __tracebackhide__ = True
        if not self.passed:
            raise AssertionError(self.explain())


class ScenarioRunner:
    """What the ``genchaos_scenario`` fixture gives a test: call it to run a scenario and get its
    verdict, or ``assert_passes`` to fail the test unless the scenario passes."""

    def __init__(self, stack_for: Callable[[str], EmbeddedStack], default_profile: str) -> None:
        self._stack_for = stack_for
        self._default_profile = default_profile

    def __call__(self, scenario: ScenarioRef, profile: str | None = None) -> ScenarioRun:
        """Run ``scenario`` (catalogue name or YAML path) on ``profile``'s stack, with the scenario's own
        timing and settings; the stack's service is then restarted as it was, for the next test."""
        chosen = find_scenario(scenario)
        profile = resolve_profile(profile or self._default_profile)
        if profile not in chosen.profiles:
            raise ValueError(f"scenario {chosen.name} runs on profile(s) {', '.join(chosen.profiles)}, not {profile}")
        stack = self._stack_for(profile)
        assert stack.info is not None
        before = stack.info.profile, stack.info.timing
        [result] = run_suite(EmbeddedTarget(stack), [chosen], [profile])
        stack.restart_service(profile=before[0], timing=before[1], env={})
        return ScenarioRun(result, audit([result]))

    def assert_passes(self, scenario: ScenarioRef, profile: str | None = None) -> ScenarioRun:
        """Run the scenario and fail the test, with the failed checks and claims, unless it passed."""
        __tracebackhide__ = True
        run = self(scenario, profile)
        run.assert_passed()
        return run
