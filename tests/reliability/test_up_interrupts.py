"""`genchaos up` interrupted at any moment (SIGINT or SIGTERM during start-up or while up, or after
one of its children crashed) leaves nothing behind: no process, no listening port, no temp directory.

Each run gets its own TMPDIR, so every directory the stack creates, and every process whose command
line or environment names it, belongs to that run and to nothing else on the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.reliability.observe import is_alive, processes_of, wait_for

START_TIMEOUT_S = 120
EXIT_TIMEOUT_S = 60


@dataclass
class UpRun:
    """One `genchaos up` process and the private temp directory its stack lives in."""

    popen: subprocess.Popen
    tmp_root: Path
    stack_file: Path
    output: Path

    def stack_processes(self) -> list[psutil.Process]:
        return processes_of(self.tmp_root, self.popen.pid if self.popen.poll() is None else None)

    def output_text(self) -> str:
        return self.output.read_text(errors="replace")


def listening_ports(processes: list[psutil.Process]) -> set[int]:
    pids = {p.pid for p in processes}
    return {c.laddr.port for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.pid in pids}


def all_listening_ports() -> set[int]:
    return {c.laddr.port for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN}


@pytest.fixture
def up_run(tmp_path: Path, own_tmpdir: Path) -> Iterator[UpRun]:
    """A started `genchaos up` with its own TMPDIR; whatever the test leaves is killed (and own_tmpdir
    deleted)."""
    tmp_root = own_tmpdir
    env = dict(os.environ)
    env.pop("TOXIPROXY_URL", None)
    output = tmp_path / "up.log"
    with output.open("wb") as sink:
        popen = subprocess.Popen([sys.executable, "-m", "chaos", "up", "--stack-file", str(tmp_path / "stack.json"),
                                  "--timing", "fast"], stdout=sink, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
    run = UpRun(popen, tmp_root, tmp_path / "stack.json", output)
    try:
        yield run
    finally:
        if popen.poll() is None:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
        for process in run.stack_processes():
            process.kill()


def _initdb_running(run: UpRun) -> bool:
    return _named_process_running(run, "initdb")


def _postgres_running(run: UpRun) -> bool:
    return _named_process_running(run, "postgres")


def _named_process_running(run: UpRun, name: str) -> bool:
    for process in run.stack_processes():
        try:
            if process.name() == name:
                return True
        except psutil.NoSuchProcess:
            continue
    return False


def _service_starting(run: UpRun) -> bool:
    return any(run.tmp_root.glob("genchaos-stack-*/logs/service.log"))


def _up(run: UpRun) -> bool:
    return run.stack_file.exists()


def _interpreter_starting(run: UpRun) -> bool:
    time.sleep(0.3)
    return True


MOMENTS: dict[str, Callable[[UpRun], bool]] = {
    "interpreter starting": _interpreter_starting,
    "initdb running": _initdb_running,
    "postgres running": _postgres_running,
    "service starting": _service_starting,
    "up": _up,
}


def interrupt_and_check(run: UpRun, signum: signal.Signals, *, clean_exit: bool) -> None:
    """Send ``signum``; `genchaos up` must exit and leave no process, port or directory behind."""
    processes = run.stack_processes()
    ports = listening_ports(processes)
    run.popen.send_signal(signum)
    try:
        code = run.popen.wait(EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"genchaos up did not exit {EXIT_TIMEOUT_S} s after {signum.name}:\n{run.output_text()}")
    _, alive = psutil.wait_procs(processes, timeout=10)
    left = [p for p in alive + run.stack_processes() if is_alive(p)]
    assert left == [], f"processes left running: {[(p.pid, p.name()) for p in left]}"
    assert ports & all_listening_ports() == set(), "ports of the stack still listening"
    assert sorted(p.name for p in run.tmp_root.iterdir()) == [], "temp directories left behind"
    assert not run.stack_file.exists(), "the stack file was left behind"
    if clean_exit:
        assert code == 0, f"exit code {code}:\n{run.output_text()}"
        assert "Traceback" not in run.output_text(), run.output_text()


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "moment"), [
    (signal.SIGINT, "interpreter starting"),
    (signal.SIGTERM, "initdb running"),
    (signal.SIGINT, "postgres running"),
    (signal.SIGTERM, "service starting"),
    (signal.SIGINT, "up"),
], ids=lambda value: value.name if isinstance(value, signal.Signals) else value.replace(" ", "-"))
def test_interrupted_up_leaves_nothing_behind(up_run: UpRun, signum: signal.Signals, moment: str):
    wait_for(lambda: MOMENTS[moment](up_run) or up_run.popen.poll() is not None, timeout_s=START_TIMEOUT_S,
             what=f"genchaos up reaching '{moment}'", interval_s=0.02)
    assert up_run.popen.poll() is None, f"genchaos up exited early:\n{up_run.output_text()}"
    interrupt_and_check(up_run, signum, clean_exit=moment != "interpreter starting")


@pytest.mark.slow
def test_up_with_a_crashed_child_still_cleans_up_on_sigterm(up_run: UpRun):
    wait_for(lambda: _up(up_run) or up_run.popen.poll() is not None, timeout_s=START_TIMEOUT_S,
             what="genchaos up writing its stack file")
    assert up_run.popen.poll() is None, f"genchaos up exited early:\n{up_run.output_text()}"
    fal = [p for p in psutil.Process(up_run.popen.pid).children(recursive=True)
           if "chaos.emulators.fal" in " ".join(p.cmdline())]
    assert len(fal) == 1, "the FAL emulator is not a child of genchaos up"
    fal[0].kill()
    wait_for(lambda: not is_alive(fal[0]), timeout_s=10, what="the FAL emulator dying")
    interrupt_and_check(up_run, signal.SIGTERM, clean_exit=True)
