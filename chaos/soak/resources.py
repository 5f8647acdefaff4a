"""Memory, open file descriptors and open TCP connections of every process of the stack,
sampled from a thread with psutil while the soak runs.

A component is a long-lived process with its children: the service, PostgreSQL (the postmaster
and its backends), the two emulators and the Toxiproxy-compatible server. Each sample names the pid
of the long-lived process, so a restarted service or database starts a new lifetime of its own.

Memory is the proportional set size (PSS): a page shared by n processes counts 1/n in each, so the
sum over a family counts PostgreSQL's shared buffers once, where summed RSS counts them once per
backend and grows with every backend that touches them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from chaos.stack.embedded import EmbeddedStack

# Components started as `python -m MODULE` children of the harness.
MODULES = {"fal-emulator": "chaos.emulators.fal", "storage-emulator": "chaos.emulators.storage",
           "toxiproxy": "chaos.toxiproxy"}


@dataclass(frozen=True)
class ResourceSample:
    t: float  # seconds since the soak started
    component: str
    pid: int  # the long-lived process: a new pid is a new lifetime
    memory_bytes: int  # PSS summed over the process and its children
    open_fds: int
    connections: int  # TCP connections not listening
    processes: int


def postmaster_pid(data_dir: Path) -> int | None:
    """The running postmaster's pid from its lock file; None while the server is down."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stack_processes(stack: EmbeddedStack) -> dict[str, int]:
    """Component -> pid of its long-lived process, for the components running right now."""
    found: dict[str, int] = {}
    for child in psutil.Process().children():
        try:
            argv = child.cmdline()
        except psutil.Error:
            continue
        for component, module in MODULES.items():
            if "-m" in argv and module in argv and argv.index(module) == argv.index("-m") + 1:
                found[component] = child.pid
    if stack.info is not None and stack.info.service_pid and psutil.pid_exists(stack.info.service_pid):
        found["service"] = stack.info.service_pid
    pid = postmaster_pid(stack.postgres.data_dir)
    if pid is not None:
        found["postgres"] = pid
    return found


def proportional_memory(process: psutil.Process) -> int:
    """The process's PSS; its RSS where smaps cannot be read (another user's process, without root)."""
    try:
        return process.memory_full_info().pss
    except psutil.AccessDenied:
        return process.memory_info().rss


def measure(component: str, pid: int, started_at: float) -> ResourceSample | None:
    """One sample of a process and its children, timed when it is taken (a sweep over every component
    takes a while under load); None when the process is gone (killed between two reads)."""
    t = time.time() - started_at
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    memory = fds = connections = alive = 0
    for process in family:
        try:
            with process.oneshot():
                memory += proportional_memory(process)
                fds += process.num_fds()
                connections += sum(c.status != psutil.CONN_LISTEN for c in process.net_connections(kind="tcp"))
            alive += 1
        except psutil.Error:  # a backend that ended meanwhile
            continue
    if not alive:
        return None
    return ResourceSample(round(t, 3), component, pid, memory, fds, connections, alive)


class ResourceSampler:
    """Samples every component each ``interval_s`` from a thread, between ``start`` and ``stop``."""

    def __init__(self, locate: Callable[[], dict[str, int]], started_at: float, interval_s: float) -> None:
        self._locate = locate
        self._started_at = started_at
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-resources", daemon=True)
        self.samples: list[ResourceSample] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            for component, pid in sorted(self._locate().items()):
                sample = measure(component, pid, self._started_at)
                if sample is not None:
                    self.samples.append(sample)
            self._stop.wait(self._interval_s)
