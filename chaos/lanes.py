"""Lanes: one suite spread over several embedded stacks side by side, so a long suite takes a fraction
of its sequential time. Each lane is a process with its own stack (its own PostgreSQL, emulators and
Toxiproxy, so one lane's faults never touch another's) that takes the next job from a shared queue and
runs it with the plain sequential `run_suite` (the longest scenarios are handed out first); results
come back in the jobs' order.

Lanes run in their own process group: a Ctrl-C in the terminal reaches only the caller, which stops
each lane exactly once with SIGTERM, so every lane rolls its faults back and stops its stack in order.
A lane whose caller dies stops itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chaos.contract.model import Contract
from chaos.judge.verdicts import ScenarioResult
from chaos.run.runner import EmbeddedTarget
from chaos.scenarios.model import Scenario
from chaos.stack import interrupts
from chaos.stack.embedded import EmbeddedStack
from chaos.stack.processes import StackError
from chaos.suite import run_suite

STOP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Job:
    """One scenario on one profile; ``service_root`` runs a service package other than the project's
    (a mutant copy, say), ``label`` tells the caller's progress lines apart."""

    scenario: Scenario
    profile: str
    service_root: Path | None = None
    label: str = ""


LaneProgress = Callable[[str, Job, ScenarioResult | None], None]  # ("start" | "done", job, result)


def run_in_lanes(jobs: list[Job], lanes: int, on_progress: LaneProgress | None = None,
                 traces_dir: Path | None = None, contract: Contract | None = None) -> list[ScenarioResult]:
    """Run every job on one of ``lanes`` fresh stacks; each lane leaves its traces file in ``traces_dir``
    as ``lane-K.jsonl``. Every lane runs the service ``contract`` describes (default: the reference
service). StackError when a lane's stack cannot start; KeyboardInterrupt (after every
    lane stopped) when interrupted."""
    if not jobs:
        return []
    lanes = max(1, min(lanes, len(jobs)))
    context = multiprocessing.get_context("spawn")
    todo, events = context.Queue(), context.Queue()
    # the longest first, so the lanes end together rather than one waiting on a long last scenario
    for index in sorted(range(len(jobs)), key=lambda i: -jobs[i].scenario.load.duration_s
                        - jobs[i].scenario.load.drain_s):
        todo.put((index, jobs[index]))
    for _ in range(lanes):
        todo.put(None)
    processes = [context.Process(target=_lane, name=f"genchaos-lane-{k}", daemon=False,
                                 args=(k, todo, events, str(traces_dir) if traces_dir else None, os.getpid(),
                                       contract))
                 for k in range(lanes)]
    for process in processes:
        process.start()
    results: dict[int, ScenarioResult] = {}
    try:
        failure = _collect(processes, events, jobs, results, on_progress)
    except BaseException:
        _stop(processes, events, terminate=True)
        raise
    _stop(processes, events, terminate=failure is not None)
    if failure:
        raise StackError(failure)
    return [results[index] for index in range(len(jobs))]


def _collect(processes: list, events, jobs: list[Job], results: dict[int, ScenarioResult],
             on_progress: LaneProgress | None) -> str | None:
    """Relay the lanes' events until every lane ended; the first lane failure ends the wait early."""
    ended = 0
    while ended < len(processes):
        try:
            with interrupts.deferred():  # a Ctrl-C waits at most the timeout, never breaks the queue's lock
                kind, index, payload = events.get(timeout=1.0)
        except queue.Empty:
            if all(p.exitcode is not None for p in processes) and events.empty():
                return "a lane ended without a word (killed?)" if len(results) < len(jobs) else None
            continue
        if kind == "ended":
            ended += 1
            continue
        if kind == "failed":
            return payload
        if kind == "done":
            results[index] = payload
        if on_progress:
            on_progress(kind, jobs[index], payload)
    return None


def _stop(processes: list, events, terminate: bool) -> None:
    """Wait for the lanes, first sending each one still running a single SIGTERM when ``terminate``;
    their last events are drained meanwhile (a lane exits only once its queue is flushed), and a lane
    that does not stop in time is killed. A Ctrl-C meanwhile waits until every lane has stopped."""
    with interrupts.deferred():
        for process in processes:
            if terminate and process.exitcode is None and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(p.exitcode is None for p in processes) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                events.get(timeout=0.2)
        for process in processes:
            if process.exitcode is None:
                process.kill()
            process.join()


def _lane(lane: int, todo, events, traces_dir: str | None, caller_pid: int, contract: Contract | None) -> None:
    """One lane: a stack, then jobs from the queue until its end marker, then its traces file.

    The queues are only touched with SIGTERM held back: a KeyboardInterrupt raised while a queue holds
    its lock (the shared one of ``todo``, or ``events``' own) would leave it held, and the lane, or
    every lane, would hang on it until killed."""
    os.setpgrp()  # the terminal's Ctrl-C goes to the caller only; it stops us once
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # unwind as from Ctrl-C: rollback, stack stop
    threading.Thread(target=_stop_when_orphaned, args=(caller_pid,), daemon=True).start()
    failure = None
    try:
        with EmbeddedStack(contract=contract) as stack:
            target = EmbeddedTarget(stack)
            while True:
                with interrupts.deferred():
                    item = todo.get()
                if item is None:
                    break
                index, job = item

                def relay(kind: str, scenario: Scenario, profile: str, result: ScenarioResult | None,
                          index: int = index) -> None:
                    with interrupts.deferred():
                        events.put((kind, index, result))

                stack.service_root = job.service_root
                run_suite(target, [job.scenario], [job.profile], relay)
            if traces_dir and stack.info.traces_file and Path(stack.info.traces_file).is_file():
                shutil.copyfile(stack.info.traces_file, Path(traces_dir) / f"lane-{lane}.jsonl")
    except StackError as exc:
        failure = f"lane {lane}: {exc}"
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the stack is down; a stop now has nothing to stop
        if failure:
            events.put(("failed", None, failure))
        events.put(("ended", None, None))


def _stop_when_orphaned(caller_pid: int) -> None:
    """A lane outliving its caller (killed with -9) stops itself and its stack."""
    while os.getppid() == caller_pid:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
