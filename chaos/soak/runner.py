"""One soak: the embedded stack around the contract's service (its hardened profile where it has one,
fast timing) under Locust load, with the rotating fault timeline and kill -9 of the service and
PostgreSQL in turn, then a drain and the accounting. A service the contract gives by URL runs
elsewhere: the harness waits for it, and kills and samples PostgreSQL alone.

Everything the soak starts is stopped, and every temp directory deleted, when it ends or is
interrupted: the stack, Locust, the sampler and fault threads, and every fault is rolled back.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chaos.contract.model import Contract
from chaos.run.locust_command import locust_command, locustfile
from chaos.run.observations import FaultWindow
from chaos.run.timeline import FaultSession
from chaos.soak import inventory
from chaos.soak.growth import Growth, GrowthBounds, judge_growth
from chaos.soak.kills import Kill, kill
from chaos.soak.ledger import Ledger, account, owned_objects
from chaos.soak.resources import ResourceSample, ResourceSampler, stack_processes
from chaos.soak.rotation import FaultRotation, ci_faults
from chaos.soak.verdict import Check, checks, overall
from chaos.stack.embedded import EmbeddedStack
from chaos.stack.faults import FalEmulatorControl, FaultController
from chaos.stack.processes import ChildProcess, http_ok, wait_until

KILL_TARGETS = ("service", "postgres")  # taken in turn; PostgreSQL alone when the service runs elsewhere
KILL_JITTER = 0.25  # each gap is kill_every +/- this share, drawn from the seed
KILL_SETTLE_S = 3.0  # after a killed process is back: pools refill, queued work resumes
FAL_LOG_READ_EVERY_S = 60.0
DRAIN_TIMEOUT_S = 90.0  # well past the reference service's 20 s generation deadline on the fast timing
ORPHAN_SETTLE_S = 30.0  # for a failed generation's object to be removed in the background
LOCUST_EXIT_GRACE_S = 90.0  # Locust lets users finish the generation they follow (30 s), then writes its reports
ACCEPTED_FILE_ENV = "GENCHAOS_SOAK_ACCEPTED_FILE"  # read by loadtests/accepted_log.py


@dataclass(frozen=True)
class SoakOptions:
    duration_s: float
    kill_every_s: float
    users: int
    out: Path
    seed: int
    calm_s: float = 0.0  # the last part of the load runs without kills: killed processes get a long lifetime
    bounds: GrowthBounds = field(default_factory=GrowthBounds)

    @property
    def kills_until_s(self) -> float:
        return self.duration_s - self.calm_s

    @property
    def sample_interval_s(self) -> float:
        """About 200 samples per run, between one and three seconds apart."""
        return min(3.0, max(1.0, self.duration_s / 200))


@dataclass
class SoakResult:
    options: SoakOptions
    service: str  # the contract's name
    profile: str
    started_at: float
    drain_s: float
    ledger: Ledger
    kills: list[Kill]
    faults: list[FaultWindow]  # seconds since the start
    samples: list[ResourceSample]
    growth: list[Growth]
    checks: list[Check]

    @property
    def verdict(self) -> str:
        return overall(self.checks)


def _locust_argv(options: SoakOptions, stack_file: Path) -> list[str]:
    args = argparse.Namespace(scenario=None, scenario_file=None, users=options.users, spawn_rate=options.users,
                              run_time=f"{int(options.duration_s)}s")
    argv = locust_command(args, stack_file, options.out)
    argv[argv.index("-f") + 1] += f",{locustfile().with_name('accepted_log.py')}"
    return argv


class _KillSchedule:
    """When the next kill is due and whom it hits: the targets in turn, seeded gaps."""

    def __init__(self, every_s: float, seed: int, targets: tuple[str, ...]) -> None:
        self._every_s = every_s
        self._targets = targets
        self._rng = random.Random(seed)
        self._count = 0
        self.due = self._gap()

    def _gap(self) -> float:
        return self._every_s * self._rng.uniform(1 - KILL_JITTER, 1 + KILL_JITTER)

    def next_target(self, now: float) -> str:
        target = self._targets[self._count % len(self._targets)]
        self._count += 1
        self.due = now + self._gap()
        return target


def _stack(contract: Contract, stack_file: Path, exits: contextlib.ExitStack,
           log: Callable[[str], None]) -> EmbeddedStack:
    """The embedded stack around the contract's service, its stack file written; a service that runs
    elsewhere is waited for once the stack file tells how to start it (`genchaos env`)."""
    stack = exits.enter_context(EmbeddedStack(timing="fast", contract=contract, wait_for_external=False))
    info = stack.info
    info.dump(stack_file)
    exits.callback(stack_file.unlink, missing_ok=True)
    start = contract.start
    if start.url is not None:
        log(f"waiting {start.start_timeout_s:g}s for {contract.name} at {info.service_url}; its environment: "
            f"genchaos env --stack-file {stack_file}")
        wait_until(http_ok(f"{info.service_url}{start.health_path}"), timeout_s=start.start_timeout_s,
                   what=f"service {contract.name} at {info.service_url}")
    log(f"embedded stack up ({contract.name}, {info.profile} profile, fast timing): service {info.service_url}")
    return stack


def run_soak(options: SoakOptions, contract: Contract, log: Callable[[str], None]) -> SoakResult:
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    accepted_file = out / "accepted.jsonl"
    accepted_file.unlink(missing_ok=True)
    service_elsewhere = (f"{contract.name} runs elsewhere ({contract.start.url}): its process is not the harness's "
                         "to kill -9 or to sample; PostgreSQL alone was killed") if contract.start.url else None
    stack_file = out / "stack.json"
    with contextlib.ExitStack() as exits:
        stack = _stack(contract, stack_file, exits, log)
        info = stack.info
        fal = FalEmulatorControl(info.fal_admin_url, info.ca_bundle)
        exits.callback(fal.close)
        started_at = time.time()
        rotation = FaultRotation(FaultSession(FaultController(info.toxiproxy_url), fal, clock=time.time),
                                 ci_faults(), options.seed, log)
        sampler = ResourceSampler(lambda: stack_processes(stack), started_at, options.sample_interval_s)
        harvest = inventory.FalLogHarvest(fal)
        locust = ChildProcess("locust", _locust_argv(options, stack_file), log_dir=out,
                              env={ACCEPTED_FILE_ENV: str(accepted_file)})
        exits.callback(locust.stop)
        sampler.start()
        exits.callback(sampler.stop)
        rotation.start()
        exits.callback(rotation.stop)
        log(f"Locust: {options.users} users for {options.duration_s:g}s; output in {locust.log_path}")

        targets = KILL_TARGETS if service_elsewhere is None else ("postgres",)
        kills = _soak(stack, options, targets, started_at, harvest, log)
        rotation.stop()
        log("load ended: faults rolled back, waiting for Locust and the queue to drain")
        with contextlib.suppress(subprocess.TimeoutExpired):
            locust.popen.wait(LOCUST_EXIT_GRACE_S)
        locust.stop()
        accepted = inventory.accepted_generations(accepted_file)
        outcomes, drain_s = inventory.read_outcomes(info, contract, accepted, DRAIN_TIMEOUT_S)
        harvest.collect()
        try:
            stored, unreadable = inventory.settled_objects(info, owned_objects(outcomes), ORPHAN_SETTLE_S), None
        except httpx.HTTPError as exc:
            stored, unreadable = None, str(exc)
        sampler.stop()

    fal_windows = [(w.start, w.end) for w in rotation.windows if w.proxy == "fal"]
    ledger = account({g.generation_id: g.trace_id for g in accepted}, outcomes, harvest.entries, stored, fal_windows,
                     [(started_at + k.t, k.target) for k in kills], unreadable)
    growth = judge_growth(sampler.samples, options.bounds, [k.outage(KILL_SETTLE_S) for k in kills])
    faults = [dataclasses.replace(w, start=w.start - started_at, end=w.end - started_at) for w in rotation.windows]
    return SoakResult(options, contract.name, info.profile, started_at, round(drain_s, 1), ledger, kills, faults,
                      sampler.samples, growth, checks(ledger, growth, kills, rotation.errors, options.duration_s,
                                                      options.bounds, service_elsewhere))


def _soak(stack: EmbeddedStack, options: SoakOptions, targets: tuple[str, ...], started_at: float,
          harvest: inventory.FalLogHarvest, log: Callable[[str], None]) -> list[Kill]:
    """Until the duration is up: kill ``targets`` in turn when due, and read FAL's log now and then."""
    schedule = _KillSchedule(options.kill_every_s, options.seed, targets)
    kills: list[Kill] = []
    last_read = 0.0
    while (now := time.time() - started_at) < options.duration_s:
        if now >= schedule.due and now < options.kills_until_s:
            record = kill(stack, schedule.next_target(now), now)
            kills.append(record)
            log(f"kill -9 {record.target} (pid {record.pid}): "
                + (f"back after {record.back_after_s:.1f}s" if record.error is None else f"NOT BACK: {record.error}"))
        if now - last_read >= FAL_LOG_READ_EVERY_S:
            harvest.collect()
            last_read = now
        time.sleep(0.2)
    return kills
