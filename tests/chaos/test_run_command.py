"""`genchaos run --scenario-file` on a running stack, as a user with their own scenario would run it:
the documented format is accepted, the run ends by itself, and the report files keep the contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from chaos.run.runner import EmbeddedTarget

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

USER_SCENARIO = """\
name: my_storage_brownout
description: Storage uploads crawl for three seconds; nothing accepted may be lost.
profiles: [hardened]
timing: fast
load: {rate_per_s: 5, duration_s: 9, drain_s: 15}
faults:
  - {at: 3.5, for: 3, toxic: {proxy: storage, type: latency, stream: upstream, attributes: {latency: 300}}}
checks:
  - {metric: success_rate, phase: before, min: 0.7}
  - {metric: lost_generations, max: 0}
  - {metric: auth_failures, max: 0}
"""
METRIC_KEYS = {"requests", "success_rate", "rate_503", "breaker_opened", "time_to_open_s", "recovery_s",
               "upstream_attempts_per_generation", "lost_generations"}


def test_a_users_scenario_file_runs_on_a_running_stack_and_writes_every_report(chaos_target: EmbeddedTarget,
                                                                               tmp_path: Path):
    info = chaos_target.stack.restart_service(profile="hardened", timing="fast", env={})
    stack_file, scenario_file, out = tmp_path / "stack.json", tmp_path / "mine.yaml", tmp_path / "out"
    info.dump(stack_file)
    scenario_file.write_text(USER_SCENARIO)

    result = subprocess.run([sys.executable, "-m", "chaos", "run", "--scenario-file", str(scenario_file),
                             "--stack-file", str(stack_file), "--profile", "hardened", "--out", str(out)],
                            capture_output=True, text=True, timeout=150)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.html", "junit.xml", "traces.jsonl"}
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "pass"
    [scenario] = report["scenarios"]
    assert (scenario["name"], scenario["profile"], scenario["verdict"]) == ("my_storage_brownout", "hardened", "pass")
    assert all({"name", "passed", "expected", "observed"} <= set(check) for check in scenario["checks"])
    assert METRIC_KEYS <= set(scenario["metrics"])
    assert scenario["metrics"]["requests"] > 0
    assert all({"claim", "profile", "held", "evidence"} <= set(claim) for claim in report["claims"])
    cases = ElementTree.parse(out / "junit.xml").getroot().findall(".//testcase")
    assert len(cases) == 1


def test_a_scenario_the_running_stack_cannot_serve_is_a_set_up_error(chaos_target: EmbeddedTarget, tmp_path: Path):
    info = chaos_target.stack.restart_service(profile="hardened", timing="fast", env={})
    stack_file, scenario_file = tmp_path / "stack.json", tmp_path / "report-only.yaml"
    info.dump(stack_file)
    scenario_file.write_text(USER_SCENARIO.replace("profiles: [hardened]", "profiles: [report]"))
    result = subprocess.run([sys.executable, "-m", "chaos", "run", "--scenario-file", str(scenario_file),
                             "--stack-file", str(stack_file), "--profile", "report", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "profile 'hardened'" in result.stderr
