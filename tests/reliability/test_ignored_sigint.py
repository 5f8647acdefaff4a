"""Every long-running command started with SIGINT ignored, as a shell starts its background jobs (`cmd &`
in a script, `nohup`), still stops on SIGINT: promptly, by its own clean path (its usual exit code, no
traceback), leaving no process, listening port or temp directory behind.

Each command gets its own TMPDIR, so every process naming it or inheriting it is that command's."""

from __future__ import annotations

import contextlib
import csv
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

from chaos.stack.processes import free_port
from chaos.stack.tls import make_test_ca
from tests.reliability.observe import is_alive, processes_of, wait_for

START_TIMEOUT_S = 120
EXIT_TIMEOUT_S = 45  # below the 60 s genchaos load gives a Locust master that ignores its SIGINT

LONG_FAULT = """
name: ignored_sigint
description: A fault longer than the test, so the interrupt always finds it active.
profiles: [hardened]
load: {rate_per_s: 2, duration_s: 60, drain_s: 5}
faults:
  - {at: 0.5, for: 60, down: fal}
checks:
  - {metric: lost_generations, max: 0}
"""


@dataclass(frozen=True)
class Command:
    """How to start one command in a directory of its own, when it is running (given its directory and
    its processes, itself first), and the exit codes an interrupted run may end with."""

    argv: Callable[[Path], list[str]]
    running: Callable[[Path, list[psutil.Process]], bool]
    exit_codes: tuple[int, ...]


def genchaos(*args: str) -> list[str]:
    return [sys.executable, "-m", "chaos", *args]


def laned_run(directory: Path) -> list[str]:
    (directory / "long_fault.yaml").write_text(LONG_FAULT)
    return genchaos("run", "--lanes", "2", "--profile", "hardened", "--scenario-file",
                    str(directory / "long_fault.yaml"), "--out", str(directory / "out"))


def fal_emulator(directory: Path) -> list[str]:
    tls = make_test_ca(directory / "tls")
    return [sys.executable, "-m", "chaos.emulators.fal", "--port", str(free_port()), "--certfile", str(tls.server_cert),
            "--keyfile", str(tls.server_key)]


def storage_emulator(directory: Path) -> list[str]:
    return [sys.executable, "-m", "chaos.emulators.storage", "--port", str(free_port()), "--data-dir", str(directory / "data"),
            "--service-key", "service-key", "--jwt-secret", "jwt-secret"]


def cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def service_running(directory: Path, processes: list[psutil.Process]) -> bool:
    return any(cmdline(p)[1:3] == ["-m", "service"] for p in processes)


def locust_running(processes: list[psutil.Process], *roles: str) -> bool:
    commands = [cmdline(p) for p in processes if cmdline(p)[1:3] == ["-m", "locust"]]
    return bool(commands) and all(any(role in c for c in commands) for role in roles)


def load_running(directory: Path, processes: list[psutil.Process]) -> bool:
    """The master and its worker run, and users do (before that the master waits for its worker, a wait
    Locust does not end gracefully on Ctrl-C)."""
    history = directory / "load" / "locust_stats_history.csv"
    if not (locust_running(processes, "--master", "--worker") and history.exists()):
        return False
    with history.open() as rows:
        return any(row["User Count"] not in ("", "0") for row in csv.DictReader(rows))


def listening(directory: Path, processes: list[psutil.Process]) -> bool:
    return bool(listening_ports(processes[:1]))


COMMANDS = {
    "up": Command(lambda d: genchaos("up", "--stack-file", str(d / "stack.json"), "--timing", "fast"),
                  lambda d, ps: (d / "stack.json").exists(), (0,)),
    "run --lanes": Command(laned_run, service_running, (130,)),
    "soak": Command(lambda d: genchaos("soak", "--out", str(d / "soak"), "--duration", "5m", "--users", "2"),
                    lambda d, ps: (d / "soak" / "stack.json").exists() and locust_running(ps), (130,)),
    # interrupted mid-run, the master still judges what ran: the gate's verdict is the exit code
    "load": Command(lambda d: genchaos("load", "--out", str(d / "load"), "--run-time", "2m", "--users", "2",
                                       "--workers", "1"), load_running, (0, 1)),
    "mutants": Command(lambda d: [sys.executable, "-m", "chaos.mutants", "--only", "image_url_dropped"],
                       service_running, (130,)),
    "toxiproxy": Command(lambda d: genchaos("toxiproxy", "--host", "127.0.0.1", "--port", "0"), listening, (0,)),
    "fal emulator": Command(fal_emulator, listening, (0,)),
    "storage emulator": Command(storage_emulator, listening, (0,)),
}


def listening_ports(processes: list[psutil.Process]) -> set[int]:
    pids = {p.pid for p in processes}
    return {c.laddr.port for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.pid in pids}


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored in whatever starts meanwhile, as a shell without job control starts `cmd &`."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_started_with_sigint_ignored_still_stops_on_sigint(name: str, tmp_path: Path,
                                                                     own_tmpdir: Path):
    command, output = COMMANDS[name], tmp_path / "output.log"
    argv = command.argv(tmp_path)
    with output.open("wb") as sink, sigint_ignored():
        popen = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env={k: v for k, v in os.environ.items() if k != "TOXIPROXY_URL"},
                                 start_new_session=True)
    this = psutil.Process(popen.pid)

    def processes() -> list[psutil.Process]:
        return [this, *processes_of(own_tmpdir, popen.pid)]

    try:
        wait_for(lambda: popen.poll() is not None or command.running(tmp_path, processes()),
                 timeout_s=START_TIMEOUT_S, what=f"{name} running", interval_s=0.2)
        assert popen.poll() is None, f"{name} exited early:\n{output.read_text(errors='replace')}"
        running, ports = processes(), listening_ports(processes())
        popen.send_signal(signal.SIGINT)
        began = time.monotonic()
        try:
            code = popen.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} still running {EXIT_TIMEOUT_S} s after SIGINT:\n{output.read_text(errors='replace')}")
        stopped_in = time.monotonic() - began
        _, alive = psutil.wait_procs(running, timeout=10)
        left = [p for p in alive + processes_of(own_tmpdir) if is_alive(p)]
    finally:
        if popen.poll() is None:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
        for process in processes_of(own_tmpdir):
            process.kill()
    text = output.read_text(errors="replace")
    print(f"\n{name} stopped {stopped_in:.1f} s after SIGINT")
    assert code in command.exit_codes and "Traceback" not in text, f"exit code {code}:\n{text}"
    assert left == [], f"processes left running: {[cmdline(p) for p in left]}"
    assert ports & {c.laddr.port for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN} == set()
    assert sorted(p.name for p in own_tmpdir.iterdir()) == [], "temp directories left behind"
