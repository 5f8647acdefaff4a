"""Lanes: a suite spread over fresh stacks side by side. One lane's faults never reach another lane,
results come back in the jobs' order, a job that cannot run is a result of its own, and an interrupted
or orphaned run leaves no process of any lane behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from chaos.lanes import Job, run_in_lanes
from chaos.scenarios.catalogue import load_catalogue
from chaos.stack.processes import StackError
from tests.reliability.observe import is_alive, processes_of, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

CATALOGUE = load_catalogue()

LONG_FAULT = """
name: long_fault
description: A FAL outage longer than any test waits, so only a stop can end it.
profiles: [hardened]
load: {rate_per_s: 2, duration_s: 600, drain_s: 5}
faults:
  - {at: 0.5, for: 600, down: fal}
checks:
  - {metric: lost_generations, max: 0}
"""


def failed_checks(result) -> list[str]:
    return [f"{c.name}: {c.status}, observed {c.observed}" for c in result.checks if not c.passed]


def test_a_fault_in_one_lane_never_reaches_the_scenario_beside_it(tmp_path: Path):
    jobs = [Job(CATALOGUE["fal_down"], "hardened"),
            Job(CATALOGUE["baseline"], "hardened", service_root=tmp_path),  # no service there: cannot run
            Job(CATALOGUE["baseline"], "hardened")]
    outage, broken, calm = run_in_lanes(jobs, lanes=2, traces_dir=tmp_path)
    assert (outage.name, broken.name, calm.name) == ("fal_down", "baseline", "baseline")
    assert outage.metrics["rate_503"] > 0 and outage.passed, failed_checks(outage)
    assert broken.error and "holds no service package" in broken.error
    # side by side with a FAL outage, yet no 503 and a breaker that never opened: its own stack
    assert calm.error is None and calm.passed, failed_checks(calm)
    assert sorted(p.name for p in tmp_path.glob("lane-*.jsonl")) == ["lane-0.jsonl", "lane-1.jsonl"]


def test_a_lane_whose_stack_cannot_start_fails_the_run_naming_the_lane_and_the_cause(monkeypatch, tmp_path: Path,
                                                                                      own_tmpdir: Path):
    monkeypatch.setenv("GENCHAOS_PG_BINDIR", str(tmp_path / "no-postgres-here"))  # the lanes inherit it
    began = time.monotonic()
    with pytest.raises(StackError, match=r"lane \d: .*GENCHAOS_PG_BINDIR"):
        run_in_lanes([Job(CATALOGUE["baseline"], "hardened")] * 2, lanes=2)
    # promptly: not after the 60 s a lane gets to stop (a lane stopped while it held a queue's lock hung)
    assert time.monotonic() - began < 30
    assert list(own_tmpdir.iterdir()) == []


def start_laned_run(tmp_path: Path, tmpdir: Path) -> tuple[subprocess.Popen, set[int]]:
    """`genchaos run --lanes 2` of two long faults, with ``tmpdir`` as its TMPDIR, once both lanes'
    services run; returns the run and every process of its lanes (their PostgreSQL servers included,
    which leave the process tree)."""
    scenario = tmp_path / "long_fault.yaml"
    scenario.write_text(LONG_FAULT)
    second = tmp_path / "long_fault_2.yaml"
    second.write_text(LONG_FAULT.replace("name: long_fault", "name: long_fault_2"))
    run = subprocess.Popen([sys.executable, "-m", "chaos", "run", "--lanes", "2", "--profile", "hardened",
                            "--scenario-file", str(scenario), "--scenario-file", str(second),
                            "--out", str(tmp_path / "out")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    wait_for(lambda: run.poll() is not None or sum(map(is_service, processes_of(tmpdir, run.pid))) == 2, timeout_s=90,
             what="both lanes' services running")
    assert run.poll() is None, run.stdout.read().decode()
    return run, {p.pid for p in processes_of(tmpdir, run.pid)}


def is_service(process: psutil.Process) -> bool:
    try:
        return process.cmdline()[1:3] == ["-m", "service"]
    except psutil.Error:
        return False


def running(pids: set[int]) -> list[str]:
    """The command lines of those processes still running."""
    alive = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if is_alive(process):
                alive.append(" ".join(process.cmdline()))
        except psutil.Error:
            pass
    return alive


@pytest.mark.slow
def test_an_interrupted_laned_run_stops_every_lane_and_leaves_nothing_running(tmp_path: Path, own_tmpdir: Path):
    run, lanes = start_laned_run(tmp_path, own_tmpdir)
    try:
        run.send_signal(signal.SIGINT)  # as Ctrl-C in a terminal: to the run only, not to its lanes
        code = run.wait(90)
    finally:
        if run.poll() is None:
            run.kill()
    output = run.stdout.read().decode()
    assert code == 130, output
    assert "rolled back" in output and "Traceback" not in output, output
    # the lanes were waited for; what they started may take a moment more to exit
    wait_for(lambda: not running(lanes), timeout_s=10, what="every process of the lanes gone")
    assert list(own_tmpdir.iterdir()) == []  # the lanes' stacks and the run's traces directory


@pytest.mark.slow
def test_lanes_whose_run_was_killed_stop_by_themselves(tmp_path: Path, own_tmpdir: Path):
    run, lanes = start_laned_run(tmp_path, own_tmpdir)
    run.kill()
    run.wait()
    wait_for(lambda: not running(lanes), timeout_s=60, what="every process of the orphaned lanes gone")
    # the killed run's own traces directory is left, since nothing was left to remove it; the lanes
    # removed their stacks
    assert [p.name for p in own_tmpdir.iterdir() if not p.name.startswith("genchaos-lanes-")] == []
