"""kill -9 of the service and of PostgreSQL, each brought back as an operator's supervisor would:
the service on the same port (the load generator keeps its target), PostgreSQL on the same data
directory and port, after crash recovery.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from chaos.soak.resources import postmaster_pid
from chaos.stack.embedded import EmbeddedStack
from chaos.stack.processes import StackError

POSTGRES_GONE_TIMEOUT_S = 15.0
RESTART_ATTEMPTS = 2


@dataclass
class Kill:
    t: float  # seconds since the soak started
    target: str  # service | postgres
    pid: int | None  # what was killed
    back_after_s: float | None = None  # until it served again; None if it never came back
    error: str | None = None

    def outage(self, settle_s: float) -> tuple[float, float]:
        """From the kill until ``settle_s`` after it served again (the rest of the soak if it never did)."""
        return self.t, self.t + (self.back_after_s if self.back_after_s is not None else float("inf")) + settle_s


def kill_service(stack: EmbeddedStack) -> int | None:
    """SIGKILL the service's process group and start a new service on the same port."""
    assert stack.info is not None
    pid, port = stack.info.service_pid, int(stack.info.service_url.rsplit(":", 1)[1])
    stack.kill_service()
    _with_retry(lambda: stack.start_service(port=port), clean_up=stack.kill_service)
    return pid


def kill_postgres(stack: EmbeddedStack) -> int | None:
    """SIGKILL the postmaster and every backend at once (a crashed host, the OOM killer), then start the
    server again on its data directory, which runs crash recovery."""
    pid = postmaster_pid(stack.postgres.data_dir)
    if pid is not None:
        try:
            postmaster = psutil.Process(pid)
            family = [postmaster, *postmaster.children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        for process in family:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(family, timeout=POSTGRES_GONE_TIMEOUT_S)
        if alive:
            raise StackError(f"PostgreSQL processes {[p.pid for p in alive]} outlived kill -9")
    _with_retry(stack.postgres.restart)
    return pid


def _with_retry(start: Callable[[], object], clean_up: Callable[[], None] = lambda: None) -> None:
    """Start again once more if the first start fails (a fault held at that moment may delay readiness),
    after ``clean_up`` has removed what the failed start left."""
    for attempt in range(RESTART_ATTEMPTS):
        try:
            start()
            return
        except StackError:
            clean_up()
            if attempt == RESTART_ATTEMPTS - 1:
                raise
            time.sleep(1.0)


KILLERS = {"service": kill_service, "postgres": kill_postgres}


def kill(stack: EmbeddedStack, target: str, t: float) -> Kill:
    """Kill ``target`` and bring it back; a restart that fails is recorded, not raised."""
    started = time.monotonic()
    record = Kill(t=round(t, 3), target=target, pid=None)
    try:
        record.pid = KILLERS[target](stack)
        record.back_after_s = round(time.monotonic() - started, 3)
    except StackError as exc:
        record.error = str(exc)
    return record
