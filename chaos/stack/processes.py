"""Child processes of the embedded stack: free ports, readiness waits and certain cleanup."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx


class StackError(RuntimeError):
    """A part of the stack could not be started; the message says which and why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str, process: subprocess.Popen | None = None) -> None:
    """Poll ``check`` until it is true; fail early if ``process`` exits, late after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StackError(f"{what} exited with code {process.returncode} before it was ready")
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.05)
    raise StackError(f"{what} was not ready after {timeout_s:.0f} s")


def http_ok(url: str, *, ca_file: str | None = None) -> Callable[[], bool]:
    """A readiness check: ``url`` answers 200 (over TLS trusting ``ca_file`` when given)."""
    verify = ssl.create_default_context(cafile=ca_file) if ca_file else True
    return lambda: httpx.get(url, timeout=1.0, verify=verify).status_code == 200


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group led by ``pid``; a group already gone (it ended as we got here) is no error."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class ChildProcess:
    """One long-running child, its output going to a log file, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, argv: Sequence[str], *, log_dir: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,  # a Ctrl-C in the terminal reaches only the harness, which stops us in order
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 20) -> str:
        """The last lines this child printed, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL, as a crash would; used by crash-and-restart tests."""
        signal_group(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        self._log.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, wait, then SIGKILL whatever is left of the process group."""
        if self.popen.poll() is None:
            signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        signal_group(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        self._log.close()

