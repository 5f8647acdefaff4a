"""What OpenTelemetry costs the service: throughput and p50/p99 latency of POST /api/v1/generations
with tracing on and off, in one run on one embedded stack, as ratios. Target: at most 5% of the
throughput lost.

    python benchmarks/otel_overhead.py [--duration 5] [--concurrency 16] [--rounds 6]

Rounds alternate on/off/on/off so that drift of the machine hits both modes alike. Each round runs a
fresh service process on an emptied generations table (the admission check counts unfinished rows,
so a backlog left by the previous round would slow the next one), warms it up, then has
``--concurrency`` clients POST back to back for ``--duration`` seconds and counts the 202s. "Off" is
the same service with ``OTEL_SDK_DISABLED=true``. The FAL emulator answers at once and the queue and
per-user limits are out of reach, so nothing is shed and the worker's share of the cost is in both modes.
CPU per request is the service process's CPU time over the round divided by its 202s.

The verdict is the median over round pairs (an "on" round and the "off" round right after it) of the
throughput lost: on a 2-core machine one busy spell of another process can cost a round a quarter of
its requests, which the pooled figure (printed too) would charge to whichever mode it hit.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import ssl
import statistics
import sys
import time
from dataclasses import dataclass, field

import asyncpg
import httpx
import psutil
import uvloop

from chaos.stack.embedded import EmbeddedStack, StackInfo
from chaos.stack.processes import StackError
from chaos.stack.tokens import mint_access_token

TARGET_MAX_LOSS = 0.05
WARMUP_S = 1.0
REQUEST_TIMEOUT_S = 10.0
TIME_BUDGET_S = 180.0
STACK_START_S = 20.0  # what starting and stopping the stack takes on a busy 2-core machine
ROUND_OVERHEAD_S = 5.0  # restarting the service, emptying the table, stopping it (about 2 s when quiet)
SERVICE_ENV = {"GENCHAOS_MAX_QUEUE_DEPTH": "10000000", "GENCHAOS_MAX_UNFINISHED_PER_USER": "10000000"}
MODE_ENV = {"on": SERVICE_ENV, "off": {**SERVICE_ENV, "OTEL_SDK_DISABLED": "true"}}
INSTANT_FAL = {"queue_time_s": 0.0, "processing_time_s": 0.0, "latency_s": 0.0}
GENERATION = {"model_id": "fal-ai/flux/dev", "prompt": "a lighthouse at dusk, oil painting"}


@dataclass
class Round:
    """What one round of traffic saw."""

    accepted: int = 0
    warmup_accepted: int = 0  # their spans and generations land in the round's files and table too
    other: dict[int | str, int] = field(default_factory=dict)  # status code (or error name) -> count
    latencies_s: list[float] = field(default_factory=list)  # of the 202s
    wall_s: float = 0.0
    service_cpu_s: float = 0.0
    trace_bytes: int = 0
    completed: int = 0  # generations the worker finished by the time the service stopped


@dataclass
class ModeTotals:
    """Rounds of one mode pooled together."""

    rounds: list[Round] = field(default_factory=list)

    def total(self, name: str) -> float:
        return sum(getattr(r, name) for r in self.rounds)

    @property
    def req_per_s(self) -> float:
        return self.total("accepted") / self.total("wall_s")

    def percentile_ms(self, fraction: float) -> float:
        latencies = sorted(s for r in self.rounds for s in r.latencies_s)
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1000

    @property
    def cpu_ms_per_request(self) -> float:
        return self.total("service_cpu_s") / self.total("accepted") * 1000

    @property
    def completed_share(self) -> float:
        return self.total("completed") / (self.total("accepted") + self.total("warmup_accepted"))

    @property
    def trace_bytes_per_request(self) -> float:
        return self.total("trace_bytes") / (self.total("accepted") + self.total("warmup_accepted"))

    @property
    def failures(self) -> dict[int | str, int]:
        counts: dict[int | str, int] = {}
        for r in self.rounds:
            for key, n in r.other.items():
                counts[key] = counts.get(key, 0) + n
        return counts


async def _client(http: httpx.AsyncClient, token: str, until: float, record: Round) -> None:
    """POST back to back until ``until``, recording every outcome."""
    headers = {"Authorization": f"Bearer {token}"}
    while time.perf_counter() < until:
        started = time.perf_counter()
        try:
            response = await http.post("/api/v1/generations", json=GENERATION, headers=headers)
            outcome: int | str = response.status_code
        except httpx.HTTPError as error:
            outcome = type(error).__name__
        if outcome == 202:
            record.accepted += 1
            record.latencies_s.append(time.perf_counter() - started)
        else:
            record.other[outcome] = record.other.get(outcome, 0) + 1


async def _traffic(info: StackInfo, concurrency: int, duration_s: float) -> Round:
    """Warm the service up, then drive ``concurrency`` users for ``duration_s`` and measure."""
    tokens = [mint_access_token(info.jwt_secret, info.jwt_issuer) for _ in range(concurrency)]
    service = psutil.Process(info.service_pid)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=info.service_url, limits=limits, timeout=REQUEST_TIMEOUT_S,
                                 trust_env=False) as http:
        warmup = Round()
        warm_until = time.perf_counter() + WARMUP_S
        await asyncio.gather(*(_client(http, t, warm_until, warmup) for t in tokens))
        record = Round(warmup_accepted=warmup.accepted)
        cpu_before = sum(service.cpu_times()[:2])
        started = time.perf_counter()
        await asyncio.gather(*(_client(http, t, started + duration_s, record) for t in tokens))
        record.wall_s = time.perf_counter() - started
        record.service_cpu_s = sum(service.cpu_times()[:2]) - cpu_before
    return record


async def _sql(database_url: str, query: str) -> object:
    """One statement on the database directly (not through the proxy); returns the first value."""
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


def _trace_file_size(info: StackInfo) -> int:
    try:
        return os.path.getsize(info.traces_file or "")
    except OSError:
        return 0


def run_round(stack: EmbeddedStack, mode: str, concurrency: int, duration_s: float) -> Round:
    """One round on a fresh service in ``mode``; the service is stopped again afterwards (flushing its spans)."""
    uvloop.run(_sql(stack.info.database_direct_url, "TRUNCATE generations"))
    info = stack.restart_service(env=MODE_ENV[mode])
    traces_before = _trace_file_size(info)
    record = uvloop.run(_traffic(info, concurrency, duration_s))
    stack.stop_service()
    record.trace_bytes = _trace_file_size(info) - traces_before
    record.completed = uvloop.run(_sql(info.database_direct_url,
                                       "SELECT count(*) FROM generations WHERE status = 'completed'"))
    return record


def make_fal_instant(info: StackInfo) -> None:
    """The worker's FAL calls should cost the service its own work only, not waiting."""
    response = httpx.put(f"{info.fal_admin_url}/_emulator/behaviour", json=INSTANT_FAL,
                         verify=ssl.create_default_context(cafile=info.ca_bundle), timeout=10, trust_env=False)
    response.raise_for_status()


def check_modes(totals: dict[str, ModeTotals]) -> None:
    """Refuse figures that do not compare what they claim to: spans only when on, 202s in both."""
    for mode, mode_totals in totals.items():
        if mode_totals.total("accepted") == 0:
            raise SystemExit(f"error: no request was accepted with tracing {mode}: {mode_totals.failures}")
    if totals["on"].total("trace_bytes") == 0:
        raise SystemExit("error: the service wrote no spans with tracing on; the comparison would be meaningless")
    if totals["off"].total("trace_bytes") != 0:
        raise SystemExit("error: the service wrote spans with OTEL_SDK_DISABLED=true; tracing was not off")


def print_table(totals: dict[str, ModeTotals], args: argparse.Namespace) -> None:
    on, off = totals["on"], totals["off"]
    rows = [
        ("req/s (202)", on.req_per_s, off.req_per_s, "{:.0f}"),
        ("p50 latency ms", on.percentile_ms(0.50), off.percentile_ms(0.50), "{:.1f}"),
        ("p99 latency ms", on.percentile_ms(0.99), off.percentile_ms(0.99), "{:.1f}"),
        ("service CPU ms/request", on.cpu_ms_per_request, off.cpu_ms_per_request, "{:.2f}"),
    ]
    print(f"POST /api/v1/generations, {args.concurrency} clients, {args.rounds} x {args.duration:g} s per mode, "
          f"{psutil.cpu_count()} cores shared by service, stack and clients")
    print(f"{'':<24}{'otel on':>10}{'otel off':>10}{'on/off':>8}")
    for label, value_on, value_off, fmt in rows:
        print(f"{label:<24}{fmt.format(value_on):>10}{fmt.format(value_off):>10}{value_on / value_off:>8.3f}")
    per_round = "  ".join(f"{mode} {r.accepted / r.wall_s:.0f}" for mode, r in _interleaved(totals))
    print(f"req/s by round: {per_round}")
    print(f"generations completed by the worker: on {on.completed_share:.0%}, off {off.completed_share:.0%} "
          "of those accepted (CPU per request includes the worker's share)")
    print(f"trace output with otel on: {on.trace_bytes_per_request:.0f} bytes/request")
    for mode, mode_totals in totals.items():
        if mode_totals.failures:
            print(f"non-202 outcomes with otel {mode}: {mode_totals.failures}")
    pair_losses = [1 - (r_on.accepted / r_on.wall_s) / (r_off.accepted / r_off.wall_s)
                   for r_on, r_off in zip(on.rounds, off.rounds, strict=True)]
    loss = statistics.median(pair_losses)
    verdict = "met" if loss <= TARGET_MAX_LOSS else "NOT met"
    print(f"throughput lost by round pair: {'  '.join(f'{x:.1%}' for x in pair_losses)}; "
          f"pooled over all rounds: {1 - on.req_per_s / off.req_per_s:.1%}")
    print(f"throughput lost to OpenTelemetry (median of round pairs): {loss:.1%} "
          f"(target <= {TARGET_MAX_LOSS:.0%}): {verdict}")


def _interleaved(totals: dict[str, ModeTotals]) -> list[tuple[str, Round]]:
    return [(mode, totals[mode].rounds[i]) for i in range(len(totals["on"].rounds)) for mode in ("on", "off")]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Throughput and p50/p99 latency of POST /api/v1/generations with "
                                                 "OpenTelemetry on vs off, as ratios.",
                                     epilog="The whole run must fit in 3 minutes, counting "
                                            f"{WARMUP_S:g} s of warm-up and {ROUND_OVERHEAD_S:g} s of restarts "
                                            f"per round and {STACK_START_S:g} s for the stack.")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of measured traffic per round (default 5)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per mode, alternating on/off (default 6)")
    args = parser.parse_args(argv)
    if not (math.isfinite(args.duration) and args.duration > 0):
        parser.error("--duration must be a positive number of seconds")
    if not 1 <= args.concurrency <= 256:
        parser.error("--concurrency must be between 1 and 256")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    estimate_s = STACK_START_S + args.rounds * 2 * (args.duration + WARMUP_S + ROUND_OVERHEAD_S)
    if estimate_s > TIME_BUDGET_S:
        parser.error(f"--rounds {args.rounds} and --duration {args.duration:g} would take about {estimate_s:.0f} s; "
                     f"the run must fit in {TIME_BUDGET_S:.0f} s")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    totals = {"on": ModeTotals(), "off": ModeTotals()}
    try:
        with EmbeddedStack(profile="hardened", timing="fast", service_env=SERVICE_ENV) as stack:
            make_fal_instant(stack.info)
            stack.stop_service()
            for _ in range(args.rounds):
                for mode in ("on", "off"):
                    totals[mode].rounds.append(run_round(stack, mode, args.concurrency, args.duration))
    except (StackError, httpx.HTTPError, asyncpg.PostgresError, OSError) as error:
        print(f"error: the embedded stack failed: {error}", file=sys.stderr)
        return 2
    check_modes(totals)
    print_table(totals, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
