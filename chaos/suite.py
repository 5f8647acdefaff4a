"""A suite: every scenario on every requested profile, each prepared on the stack, run, then judged.
It sits on top of the pipeline (run, then judge) so that neither layer reaches into the other."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from chaos.judge.verdicts import ScenarioResult, broken_run, judge
from chaos.run.runner import StackTarget, run_interruptibly, run_scenario
from chaos.scenarios.model import Scenario
from chaos.stack.processes import StackError

ProgressCallback = Callable[[str, Scenario, str, ScenarioResult | None], None]


def run_suite(target: StackTarget, scenarios: list[Scenario], profiles: list[str],
              on_progress: ProgressCallback | None = None) -> list[ScenarioResult]:
    """Every scenario on every requested profile it supports, profile by profile."""
    results = []
    for profile in profiles:
        for scenario in scenarios:
            if profile not in scenario.profiles:
                continue
            if on_progress:
                on_progress("start", scenario, profile, None)
            began = time.monotonic()
            try:
                info = target.prepare(profile, scenario.timing, scenario.service_env)
                result = judge(scenario, run_interruptibly(run_scenario(scenario, info, profile, target.contract)))
            except (StackError, OSError, httpx.HTTPError, RuntimeError) as exc:
                result = broken_run(scenario, profile, f"{type(exc).__name__}: {exc}")
            result.duration_s = time.monotonic() - began
            results.append(result)
            if on_progress:
                on_progress("done", scenario, profile, result)
    return results
