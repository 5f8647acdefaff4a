"""The scenario runner: one stack serves a whole suite; before each scenario every fault is cleared,
the emulators are reset and the service is restarted with the scenario's profile, timing and
settings (fresh breakers and counters). During the run the traffic driver, the breaker sampler
and the fault timeline run side by side; the rollback (every toxic removed, every proxy up, the
FAL emulator back to normal) runs in a ``finally``, so it also runs on Ctrl-C or SIGTERM. Then the
dependencies' own logs are collected and every completed image is checked against FAL's.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from chaos.contract.model import Contract
from chaos.run.answers import AnswerTally
from chaos.run.auth_probes import accepted_forgeries, cross_user_reads
from chaos.run.images import verify_images
from chaos.run.observations import BreakerSample, Observation, RequestRecord
from chaos.run.protocol import GenerationProtocol, marked_trace
from chaos.run.slo_rules import SLO_METRICS, ScenarioPrometheus, unseen_by_rates, why_unmeasurable
from chaos.run.telemetry import (
    TelemetrySampler,
    counted_503s,
    counted_durations,
    counted_outcomes,
    judged_timings,
    scrape_counters,
    unmeasurable,
)
from chaos.run.timeline import FaultSession
from chaos.run.traces import file_size, read_run_traces, trace_of
from chaos.run.traffic import TrafficDriver
from chaos.scenarios.model import Fault, Scenario
from chaos.stack.embedded import EmbeddedStack, StackInfo
from chaos.stack.faults import EmulatorControl, FalEmulatorControl, FaultController
from chaos.stack.keepalive import pool_limits
from chaos.stack.processes import StackError
from chaos.stack.tokens import mint_access_token

SETTLE_TIMEOUT_S = 40.0


class StackTarget(Protocol):
    """Where scenarios run: a service (described by ``contract``) ready for the given profile, timing and
    settings."""

    contract: Contract

    def prepare(self, profile: str, timing: str, env: dict[str, str]) -> StackInfo: ...


@dataclass
class EmbeddedTarget:
    """The embedded stack: the service is restarted per scenario."""

    stack: EmbeddedStack

    @property
    def contract(self) -> Contract:
        return self.stack.contract

    def prepare(self, profile: str, timing: str, env: dict[str, str]) -> StackInfo:
        return self.stack.restart_service(profile=profile, timing=timing, env=env)


@dataclass
class RunningTarget:
    """A stack started elsewhere (``--stack-file``): its service cannot be reconfigured, so a
    scenario needing another profile, timing or settings is a set-up error; breakers must settle."""

    info: StackInfo
    contract: Contract

    def prepare(self, profile: str, timing: str, env: dict[str, str]) -> StackInfo:
        problem = self.cannot_serve(profile, timing, env)
        if problem:
            raise StackError(problem)
        _wait_for_closed_breakers(self.info.service_url, self.contract, self.info.timing)
        return self.info

    def cannot_serve(self, profile: str, timing: str, env: dict[str, str]) -> str | None:
        """Why this stack cannot run a scenario with these needs, or None when it can."""
        if (profile, timing) == (self.info.profile, self.info.timing) and not env:
            return None
        return (f"the running stack serves profile {self.info.profile!r} with timing {self.info.timing!r}; "
                f"this scenario needs {profile!r}/{timing!r}" + (f" and settings {env}" if env else ""))


def _wait_for_closed_breakers(service_url: str, contract: Contract, timing: str) -> None:
    """A service left with an open breaker by the last scenario would fail the next one's first phase:
    wait until the breakers the contract lets the harness see are closed (without such telemetry, one
    breaker window, the longest a breaker the harness cannot see stays open)."""
    where = contract.telemetry.breakers
    if where is None:
        time.sleep(contract.preset(timing).values.get("breaker_recovery_timeout_s", 0.0))
        return
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError, AttributeError):
            breakers = httpx.get(f"{service_url}{where.path}", timeout=2).json().get(where.key, {})
            if all(b.get("state") == "closed" for b in breakers.values()):
                return
        time.sleep(0.5)
    raise StackError(f"breakers of {service_url} did not close within {SETTLE_TIMEOUT_S:g}s")


async def _fault_timeline(scenario: Scenario, session: FaultSession, started_at: float) -> None:
    """Hold each fault from its start for its length, all side by side; cancelling takes each back."""
    def now() -> float:
        return time.time() - started_at

    async def one(fault: Fault) -> None:
        await asyncio.sleep(max(0.0, fault.at_s - now()))
        holding = session.holding(fault)
        entering = asyncio.ensure_future(asyncio.to_thread(holding.__enter__))
        try:
            await asyncio.shield(entering)
            await asyncio.sleep(max(0.0, fault.end_s - now()))
        finally:
            # Even when cancelled (Ctrl-C) while the fault was being applied: let that finish, then take
            # the fault back here, rather than leave it to a garbage-collected generator.
            await asyncio.wait([entering])
            if not entering.cancelled() and entering.exception() is None:
                await asyncio.to_thread(holding.__exit__, None, None, None)

    await asyncio.gather(*(one(fault) for fault in sorted(scenario.faults, key=lambda f: f.at_s)))


def link_fal_log(fal_log: list[dict[str, Any]], records: list[RequestRecord], started_at: float) -> list[dict[str, Any]]:
    """FAL's log with times made relative and each job request tied to the generation it served, found by
    the marker the harness wrote into that generation's prompt. A ``generation_id`` header the service
    sent is kept apart (``generation_id_header``), a second witness only."""
    generation_of_trace = {r.trace_id: r.generation_id for r in records if r.generation_id}
    linked = []
    for entry in fal_log:
        entry = {**entry, "t": entry["t"] - started_at, "generation_id_header": entry.get("generation_id")}
        entry["generation_id"] = generation_of_trace.get(marked_trace(entry.get("prompt")) or "")
        linked.append(entry)
    by_request = {e["request_id"]: e["generation_id"] for e in linked
                  if e.get("kind") in ("submit", "run") and e.get("request_id") and e["generation_id"]}
    for entry in linked:  # polls, results and cancels name the job, not the prompt
        if entry["generation_id"] is None and entry.get("request_id") in by_request:
            entry["generation_id"] = by_request[entry["request_id"]]
    return linked


def breaker_seen_by_clients(records: list[RequestRecord]) -> list[BreakerSample]:
    """The FAL breaker as clients saw it, for a service that does not publish its breakers: open at each
    answer that blamed the breaker (its cause, from the sentence, is an open breaker and no dependency),
    closed at each other answer. Half-open is not to be seen from outside; FAL's log shows the probes."""
    samples = []
    for record in sorted((r for r in records if r.status is not None), key=lambda r: r.t + r.latency_s):
        blamed = record.status == 503 and "breaker_open" in record.causes and not any(
            cause.endswith("_unavailable") for cause in record.causes)
        samples.append(BreakerSample(t=record.t + record.latency_s, states={"fal": "open" if blamed else "closed"}))
    return samples


def _read_traces(obs: Observation, traces_file: str | None, offset: int, cause_attribute: str | None,
                 contract_causes: dict[str, str]) -> None:
    """What the service's spans written since ``offset`` show: which request traces the trace contexts FAL
    received join, and the causes refused requests' spans name (read through the contract's
    ``cause_values``); unmeasured for a service whose stack gives
    it no traces file (one started elsewhere)."""
    if traces_file is None:
        for metric in ("unjoined_traces", "unexplained_503_spans"):
            obs.unmeasurable.setdefault(metric, "the stack gives this service no traces file")
        return
    request_trace = {r.generation_id: r.trace_id for r in obs.requests + obs.flood_requests if r.accepted}
    expected = {fal_trace: request_trace[entry["generation_id"]] for entry in obs.fal_log
                if entry.get("kind") in ("submit", "run") and entry.get("generation_id") in request_trace
                and (fal_trace := trace_of(entry.get("traceparent")))
                and fal_trace != request_trace[entry["generation_id"]]}
    refused = {r.trace_id for r in obs.requests if r.status == 503} if cause_attribute else set()
    found = read_run_traces(traces_file, offset, expected, refused, cause_attribute)
    if "unjoined_traces" not in obs.unmeasurable:
        obs.trace_joins = found.joins
    if cause_attribute:
        cause_of = contract_causes.get
        obs.span_causes = {trace: sorted({cause_of(v, v) for v in named}) for trace, named in found.causes.items()}


async def run_scenario(scenario: Scenario, info: StackInfo, profile: str, contract: Contract) -> Observation:
    """Run one scenario against a prepared service and return what was observed."""
    faults = FaultController(info.toxiproxy_url)
    fal = FalEmulatorControl(info.fal_admin_url, info.ca_bundle)
    storage = EmulatorControl(info.storage_admin_url, info.ca_bundle)
    api = GenerationProtocol(contract)
    prometheus = None
    try:
        prometheus, rules_missing = await _rules_prometheus(scenario, contract, info.service_url)
        faults.reset()
        fal.reset()
        storage.reset()
        tokens = [mint_access_token(info.jwt_secret, info.jwt_issuer) for _ in range(scenario.load.users)]
        started_at = time.time()
        session = FaultSession(faults, fal, clock=lambda: time.time() - started_at)
        obs = Observation(scenario=scenario.name, profile=profile, timing=scenario.timing, started_at=started_at,
                          duration_s=scenario.load.duration_s, service_env=dict(scenario.service_env),
                          allowed_503_reasons=list(scenario.allowed_503_reasons), settle_s=scenario.settle_s,
                          unmeasurable=unmeasurable(contract),
                          upstream_metric=contract.telemetry.metrics.upstream_attempts)
        for metric in SLO_METRICS if rules_missing else ():
            obs.unmeasurable.setdefault(metric, rules_missing)
        traces_from = file_size(info.traces_file)
        tally = AnswerTally(contract)
        limits = pool_limits(max_connections=200, max_keepalive_connections=50)
        async with httpx.AsyncClient(base_url=info.service_url, limits=limits, event_hooks=tally.event_hooks) as client:
            obs.timings = await judged_timings(client, contract, scenario.timing, scenario.service_env)
            obs.counters_at_start = await scrape_counters(client, contract)
            tally.counting = True  # every API answer from here to the last scrape is in the service's counters too
            obs.accepted_forgeries = await accepted_forgeries(client, api, info.jwt_secret, info.jwt_issuer)
            sampler = TelemetrySampler(client, contract, started_at=started_at)
            stop_sampling = asyncio.Event()
            sampling = asyncio.create_task(sampler.run(stop_sampling))
            timeline = asyncio.create_task(_fault_timeline(scenario, session, started_at))
            try:
                driver = TrafficDriver(client, api, tokens, scenario.load, started_at=started_at,
                                       flood_token=mint_access_token(info.jwt_secret, info.jwt_issuer))
                obs.requests = await driver.run()
                obs.flood_requests = driver.flood_records
                await timeline
            finally:
                timeline.cancel()  # its windows take their own faults back before the full rollback
                await asyncio.gather(timeline, return_exceptions=True)
                session.rollback()  # synchronous on purpose: it must complete even while being cancelled
                stop_sampling.set()
                await asyncio.gather(sampling, return_exceptions=True)
            obs.published_breakers, obs.gauge_samples = sampler.breaker_samples, sampler.gauge_samples
            obs.fal_breaker = contract.telemetry.fal_breaker
            obs.readiness_samples = sampler.readiness_samples
            obs.breaker_samples = sampler.breaker_samples or breaker_seen_by_clients(obs.requests)
            tally.counting = False
            obs.service_counters = await scrape_counters(client, contract)
            obs.received_503s, obs.unanswered_calls = dict(tally.received_503), tally.unanswered
            obs.api_answers, obs.api_server_errors = tally.answers, tally.server_errors
            if prometheus is not None:
                obs.slo_reading = await asyncio.to_thread(prometheus.read, started_at, time.time(),
                                                          unseen_by_rates(tally.statuses))
            obs.counted_503s = counted_503s(obs.counters_at_start, obs.service_counters, contract)
            obs.counted_outcomes = counted_outcomes(obs.counters_at_start, obs.service_counters, contract)
            obs.counted_durations = counted_durations(obs.counters_at_start, obs.service_counters, contract)
            obs.cross_user_reads = await cross_user_reads(client, api, obs.requests,
                                                          mint_access_token(info.jwt_secret, info.jwt_issuer))
        obs.fal_log = link_fal_log(fal.requests(), obs.requests + obs.flood_requests, started_at)
        obs.storage_log = [{**entry, "t": entry["t"] - started_at} for entry in storage.requests()]
        if not {"unjoined_traces", "unexplained_503_spans"} <= obs.unmeasurable.keys():
            _read_traces(obs, info.traces_file, traces_from, contract.telemetry.cause_span_attribute,
                         contract.telemetry.metrics.cause_values)
        obs.fault_windows = sorted(session.windows, key=lambda w: w.start)
        await verify_images(obs.requests, obs.fal_log, fal_url=info.fal_admin_url, fal_key=info.fal_key,
                            ca_bundle=info.ca_bundle)
        return obs
    finally:
        fal.close()
        storage.close()
        if prometheus is not None:
            prometheus.close()


async def _rules_prometheus(scenario: Scenario, contract: Contract,
                            service_url: str) -> tuple[ScenarioPrometheus | None, str | None]:
    """A Prometheus for a scenario that judges the service's SLO rules (started before its traffic, so it
    scrapes the whole run), or why they cannot be judged here; (None, None) for a scenario without such
    checks."""
    if not {check.metric for check in scenario.checks} & set(SLO_METRICS):
        return None, None
    missing = why_unmeasurable(contract)
    if missing:
        return None, missing
    return await asyncio.to_thread(ScenarioPrometheus, contract, service_url), None


def run_interruptibly(scenario_run: Coroutine[Any, Any, Observation]) -> Observation:
    """asyncio.run, except that SIGINT and SIGTERM cancel the scenario, so its ``finally`` blocks take
    every fault back in order, and only then surface as KeyboardInterrupt."""

    async def main() -> Observation:
        task, loop = asyncio.current_task(), asyncio.get_running_loop()
        interrupted = False

        def interrupt() -> None:
            nonlocal interrupted
            interrupted = True
            task.cancel()

        # asyncio leaves a signal at its default action once its handler is removed: put the command's own
        # handlers back, or a SIGTERM between two scenarios would kill the run with no clean-up.
        previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        for signum in previous:
            loop.add_signal_handler(signum, interrupt)
        try:
            return await scenario_run
        except asyncio.CancelledError:
            if interrupted:
                raise KeyboardInterrupt from None
            raise
        finally:
            for signum, handler in previous.items():
                loop.remove_signal_handler(signum)
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    return asyncio.run(main())
