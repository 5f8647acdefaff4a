"""`genchaos run` interrupted while its faults are active rolls every one of them back: no toxic
left, every proxy enabled, the FAL emulator back to its default behaviour."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.faults import FalEmulatorControl, FaultController
from tests.reliability.observe import wait_for

SCENARIO = """
name: interrupted_faults
description: Three long faults at once, so an interrupt always finds them active.
profiles: [hardened]
load: {rate_per_s: 2, duration_s: 60, drain_s: 5}
faults:
  - {at: 0.5, for: 60, toxic: {proxy: storage, type: latency, attributes: {latency: 100}}}
  - {at: 0.5, for: 60, down: fal}
  - {at: 0.5, for: 60, fal: {latency_s: 0.2}}
checks:
  - {metric: lost_generations, max: 0}
"""


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_interrupted_run_rolls_back_every_fault(stack: EmbeddedStack, fal_control: FalEmulatorControl,
                                                faults: FaultController, tmp_path: Path, signum: signal.Signals):
    defaults = fal_control.behaviour()
    stack_file, scenario_file = tmp_path / "stack.json", tmp_path / "interrupted.yaml"
    stack.info.dump(stack_file)
    scenario_file.write_text(SCENARIO)
    run = subprocess.Popen([sys.executable, "-m", "chaos", "run", "--stack-file", str(stack_file),
                            "--scenario-file", str(scenario_file), "--profile", "hardened",
                            "--out", str(tmp_path / "out")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: run.poll() is not None or (
                     faults.toxics("storage") and not faults.is_enabled("fal")
                     and fal_control.behaviour()["latency_s"] == 0.2),
                 timeout_s=60, what="every fault of the scenario being active")
        assert run.poll() is None, run.stdout.read().decode()
        run.send_signal(signum)
        code = run.wait(60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    output = run.stdout.read().decode()
    assert code == 130, output
    assert "rolled back" in output and "Traceback" not in output, output
    assert {name: faults.toxics(name) for name in stack.info.proxies} == {name: {} for name in stack.info.proxies}
    assert all(faults.is_enabled(name) for name in stack.info.proxies)
    assert fal_control.behaviour() == defaults
    wait_for(lambda: httpx.get(f"{stack.info.service_url}/readyz", timeout=5).status_code == 200, timeout_s=30,
             what="the service being ready again")
