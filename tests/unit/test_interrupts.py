"""A Ctrl-C or SIGTERM that lands the moment a temp directory exists, before its owner has noted it,
or while a stack is being stopped, still leaves nothing behind: the interrupt is held back until the
owner's cleanup covers it, or is done."""

from __future__ import annotations

import signal
import subprocess
import tempfile
from pathlib import Path

import psutil
import pytest

from chaos.run.runner import run_interruptibly
from chaos.stack import interrupts, postgres
from chaos.stack.embedded import EmbeddedStack
from chaos.stack.postgres import PostgresServer
from chaos.stack.processes import ChildProcess


@pytest.fixture(autouse=True)
def ctrl_c_interrupts():
    """SIGINT raising KeyboardInterrupt, as in a terminal (pytest-xdist's workers ignore it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_signal_inside_is_delivered_on_leaving_and_the_handlers_are_restored():
    handlers = {signum: signal.getsignal(signum) for signum in interrupts.SIGNALS}
    reached_the_end = False
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            signal.raise_signal(signal.SIGINT)
            reached_the_end = True
    assert reached_the_end
    assert {signum: signal.getsignal(signum) for signum in interrupts.SIGNALS} == handlers


@pytest.fixture
def interrupted_once_made(monkeypatch):
    """`tempfile.mkdtemp` that makes the directory and then receives a Ctrl-C, as a user's might."""
    make = tempfile.mkdtemp

    def made_then_interrupted(*args, **kwargs):
        path = make(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", made_then_interrupted)


@pytest.mark.parametrize("start", [  # each stops what it started if it was not interrupted
    lambda base: PostgresServer.start(base_dir=base).stop(),
    lambda base: EmbeddedStack(base_dir=base).__enter__().close(),
], ids=["postgres-directory", "stack-directory"])
def test_an_interrupt_as_the_directory_is_made_leaves_no_directory(interrupted_once_made, tmp_path: Path, start):
    with pytest.raises(KeyboardInterrupt):
        start(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_while_the_stack_stops_its_first_child_still_stops_every_other(tmp_path: Path, monkeypatch):
    stack = EmbeddedStack(base_dir=tmp_path).__enter__()
    pids = [stack.info.service_pid, *(child.pid for child in stack._children)]
    stop = ChildProcess.stop

    def interrupted_stop(child, *args, **kwargs):
        monkeypatch.setattr(ChildProcess, "stop", stop)  # once: the first child stopped
        signal.raise_signal(signal.SIGINT)
        stop(child, *args, **kwargs)

    monkeypatch.setattr(ChildProcess, "stop", interrupted_stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            stack.close()
        running = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        assert running == []
        assert list(tmp_path.iterdir()) == []
    finally:
        stack.close()  # whatever an interrupted close left


def test_an_interrupt_as_a_postgres_tool_ends_is_raised_as_the_interrupt(monkeypatch):
    """The tool's whole process group may be gone when the interrupt lands: the interrupt must come out,
    not a ProcessLookupError from killing what already ended (seen in CI as `genchaos up` exiting 1)."""
    finish = subprocess.Popen.communicate

    def finish_then_interrupt(self, *args, **kwargs):
        finish(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess.Popen, "communicate", finish_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        postgres._run(["true"], "true")


def test_a_scenario_run_gives_the_commands_own_signal_handlers_back():
    def handler(signum, frame):  # the command's own, as install_interrupt_handlers sets it
        raise KeyboardInterrupt

    before = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        async def scenario():
            return "observed"

        assert run_interruptibly(scenario()) == "observed"
        assert signal.getsignal(signal.SIGTERM) is handler and signal.getsignal(signal.SIGINT) is handler
    finally:
        for signum, old in before.items():
            signal.signal(signum, old)
