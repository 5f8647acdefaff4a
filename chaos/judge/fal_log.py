"""What FAL saw: the emulator's request log read as ground truth for submissions, retries, the
breaker's threshold and probe, and stuck jobs, whatever the service's own counters say.

Times are the log's arrival times, relative to the scenario start.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from chaos.run.observations import BreakerSample, Observation
from chaos.run.protocol import marked_trace

BREAKER = "fal"
PROBE_SLACK_S = 1.0  # after the window: the next POST must arrive, be admitted and reach the worker
STUCK_SLACK_S = 1.0  # a poll in flight at the timeout, plus the worker's own cadence
EXPONENTIAL_RATIO = 1.35  # second retry delay over the first: ~2 for doubling (less with jitter), 1 for fixed
MIN_FIRST_DELAY_SHARE = 0.25  # full jitter over the base delay averages half of it
MIN_SPREAD_SAMPLES = 10  # first retry delays needed to say how much they spread


JOB_KINDS = ("submit", "run")  # a queue submit, or fal's synchronous run: each asks FAL for a job


def submits(obs: Observation) -> list[dict[str, Any]]:
    """FAL's job requests (queue submits and synchronous runs) in the order they arrived: what the analyses
    below read."""
    return sorted((e for e in obs.fal_log if e.get("kind") in JOB_KINDS), key=lambda e: e["t"])


def submissions_by_generation(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """FAL submit requests (``submits``) grouped by the generation they served, oldest first."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        if entry.get("generation_id"):
            grouped[entry["generation_id"]].append(entry)
    return grouped


def backoff_grows(gaps: list[float], base_delay_s: float) -> bool | None:
    """Jittered exponential backoff as FAL saw it: the first delay is a real delay (not a round trip)
    and the second is markedly longer; None with fewer than two retries to go by."""
    if len(gaps) < 2:
        return None
    return gaps[0] >= MIN_FIRST_DELAY_SHARE * base_delay_s and gaps[1] >= EXPONENTIAL_RATIO * gaps[0]


def retry_gaps(by_generation: dict[str, list[dict[str, Any]]]) -> list[float]:
    """Mean delay between a generation's n-th and (n+1)-th FAL submission, for n = 1, 2, ..."""
    gaps: dict[int, list[float]] = defaultdict(list)
    for entries in by_generation.values():
        for index, (earlier, later) in enumerate(itertools.pairwise(sorted(e["t"] for e in entries))):
            gaps[index].append(later - earlier)
    return [sum(gaps[i]) / len(gaps[i]) for i in range(len(gaps))]


def retry_delay_spread(by_generation: dict[str, list[dict[str, Any]]]) -> float | None:
    """How much the delays before generations' first retry differ, as FAL saw them: their standard
    deviation over their mean (about 0.58 for full jitter, uniform below the base delay; near 0 when
    every generation waits the same, so generations that failed together retry together). None with
    fewer than MIN_SPREAD_SAMPLES delays."""
    delays = [entries[1]["t"] - entries[0]["t"] for entries in by_generation.values() if len(entries) > 1]
    if len(delays) < MIN_SPREAD_SAMPLES:
        return None
    mean = statistics.fmean(delays)
    return round(statistics.pstdev(delays) / mean, 3) if mean > 0 else None


def retry_allowance(entries: list[dict[str, Any]], first_attempts: int, ratio: float, reserve_per_s: float,
                    ttl_s: float) -> float:
    """The most retries a budget of ``ratio`` per first attempt plus ``reserve_per_s`` (both counted
    over the last ``ttl_s``) can allow over the span of FAL's log. Over one window that is the ratio of
    every first attempt plus one reserve; over longer spans a retry can also count the previous window's
    first attempts, so each first attempt may pay twice, and each window brings its reserve."""
    span = entries[-1]["t"] - entries[0]["t"] if entries else 0.0
    windows = max(1, math.ceil(span / ttl_s))
    return ratio * first_attempts * min(windows, 2) + reserve_per_s * ttl_s * windows


def _failed(entry: dict[str, Any]) -> bool:
    return int(entry.get("status") or 0) >= 500


def _failure_run(entries: list[dict[str, Any]], until: float) -> int:
    """Consecutive failed submits FAL had answered by ``until`` (reset by a successful one)."""
    run = 0
    for entry in entries:
        if entry["t"] > until:
            break
        run = run + 1 if _failed(entry) else 0
    return run


def _burst(entries: list[dict[str, Any]], opened_at: float, quiet_s: float) -> tuple[int, int | None]:
    """The consecutive failed submits FAL answered before the first pause of ``quiet_s`` that ends after
    the breaker was seen open, and the index of the submit that ended it (the probe; None if FAL never
    heard again)."""
    run = 0
    for index, (earlier, later) in enumerate(itertools.pairwise(entries)):
        run = run + 1 if _failed(earlier) else 0
        if later["t"] > opened_at and later["t"] - earlier["t"] >= quiet_s:
            return run, index + 1
    return _failure_run(entries, math.inf), None


def _probe_calls(entries: list[dict[str, Any]], probe: int, quiet_s: float) -> int | None:
    """The most submits FAL saw in one half-open spell whose probe failed, over every spell from the
    first probe until a probe succeeds (the breaker closed); a spell lasts until the next quiet pause.
    None when the first probe succeeded, which says nothing about the limit. Every spell counts, not
    only the first: whether callers crowd into one depends on when they arrive, and a breaker letting
    every call through shows in whichever spell found several waiting."""
    most = None
    start = probe
    while start < len(entries) and _failed(entries[start]):
        end = start + 1
        while end < len(entries) and entries[end]["t"] - entries[end - 1]["t"] < quiet_s:
            end += 1
        most = max(most or 0, end - start)
        start = end
    return most


def _rate_crossed(entries: list[dict[str, Any]], window_s: float, threshold: float, min_calls: int,
                  quiet_s: float) -> int | None:
    """The first submit by which FAL's answers over the trailing ``window_s`` numbered at least
    ``min_calls`` with a failed share of at least ``threshold``; None if FAL went quiet (the breaker
    opened on another rule, or the load stopped) or the log ended before that."""
    window: deque[tuple[float, bool]] = deque()  # (time, failed) of each answer in the trailing window
    failed = 0
    for index, entry in enumerate(entries):
        if index and entry["t"] - entries[index - 1]["t"] >= quiet_s:
            return None
        window.append((entry["t"], _failed(entry)))
        failed += window[-1][1]
        while window[0][0] <= entry["t"] - window_s:
            failed -= window.popleft()[1]
        if len(window) >= min_calls and failed >= threshold * len(window):
            return index
    return None


def opened_on_failure_rate(entries: list[dict[str, Any]], window_s: float, threshold: float, min_calls: int,
                           quiet_s: float, concurrency: int, load_ended: float) -> bool | None:
    """The failure-rate rule as FAL saw it: once FAL's own answers crossed the rate (see _rate_crossed),
    FAL must go quiet for ``quiet_s`` (the breaker open) within ``concurrency`` more submits, the calls
    in flight and the next failure that finds the rate crossed, and while the load still sends. None
    when the answers never crossed the rate before FAL first went quiet: nothing to judge."""
    crossed = _rate_crossed(entries, window_s, threshold, min_calls, quiet_s)
    if crossed is None:
        return None
    for index in range(crossed, len(entries)):
        following = entries[index + 1]["t"] if index + 1 < len(entries) else math.inf
        if following - entries[index]["t"] >= quiet_s:
            return index - crossed <= concurrency and entries[index]["t"] + quiet_s <= load_ended
    return False


@dataclass(frozen=True)
class BreakerFromFal:
    """The FAL breaker's first opening, judged from FAL's log around the sampled open time.

    A breaker seen open had recorded its threshold of failures, so FAL had answered at least that
    many (``failures_to_open``); calls already in flight when it opened may still reach FAL, one per
    busy worker at most, so the whole run of failures before FAL goes quiet (``failures_in_burst``)
    may exceed the threshold by fewer than the worker concurrency. The probe is the first call after
    that quiet spell."""

    opened_at: float | None  # first sample that saw it open
    previous_sample: float | None  # the sample before (the breaker opened in between)
    failures_to_open: int | None  # consecutive failed submits FAL had answered when it was seen open
    failures_in_burst: int | None  # ... until FAL went quiet
    probe_at: float | None  # the first submit FAL saw after the quiet spell
    probe_calls: int | None = None  # the most submits of a half-open spell whose probe failed

    def opened_at_threshold(self, threshold: float, concurrency: float) -> bool | None:
        if self.failures_to_open is None or self.failures_in_burst is None:
            return None
        return self.failures_to_open >= threshold and self.failures_in_burst <= threshold + concurrency - 1

    def open_to_probe_s(self) -> float | None:
        return None if self.probe_at is None or self.opened_at is None else self.probe_at - self.opened_at

    def probed_after_window(self, window_s: float, arrival_gap_s: float) -> bool | None:
        """FAL saw nothing for the window after the breaker opened, and the probe came within slack."""
        if self.opened_at is None or self.previous_sample is None:
            return None
        if self.probe_at is None:
            return False
        longest_gap, shortest_gap = self.probe_at - self.previous_sample, self.probe_at - self.opened_at
        return longest_gap >= window_s and shortest_gap <= window_s + arrival_gap_s + PROBE_SLACK_S


def _first_open(samples: list[BreakerSample]) -> tuple[float | None, float | None]:
    previous = None
    for sample in samples:
        if sample.states.get(BREAKER) == "open":
            return sample.t, previous
        previous = sample.t
    return None, None


def breaker_from_fal(obs: Observation, window_s: float) -> BreakerFromFal:
    opened_at, previous = _first_open(obs.breaker_samples)
    if opened_at is None:
        return BreakerFromFal(None, None, None, None, None)
    entries = submits(obs)
    quiet_s = window_s / 2
    burst, probe = _burst(entries, opened_at, quiet_s)
    if probe is None:
        return BreakerFromFal(opened_at, previous, _failure_run(entries, opened_at), burst, None)
    return BreakerFromFal(opened_at, previous, _failure_run(entries, opened_at), burst, entries[probe]["t"],
                          _probe_calls(entries, probe, quiet_s))


def faulted_calls(obs: Observation) -> int:
    """FAL calls answered with an injected error: rate limits, app errors, ingress pages."""
    return sum(int(e.get("status") or 0) in (429, 500, 502, 503, 504) for e in obs.fal_log)


def refused_key_calls(obs: Observation, start: float = float("-inf"), end: float = float("inf")) -> int:
    """FAL calls answered 401 between ``start`` and ``end``: FAL refused the service's API key."""
    return sum(int(e.get("status") or 0) == 401 and start <= e["t"] < end for e in obs.fal_log)


def key_refusal_windows(obs: Observation) -> list[tuple[float, float]]:
    """The (start, end) of every fault that revoked the service's FAL key."""
    return [(w.start, w.end) for w in obs.fault_windows
            if w.proxy is None and w.attributes.get("key_revoked")]


@dataclass(frozen=True)
class StuckJob:
    request_id: str
    generation_id: str | None
    submitted: float
    last_call: float  # the last FAL call about this job (a poll or a cancel)
    resubmitted: float | None  # the next submit for the same generation, if any


def stuck_jobs(obs: Observation) -> list[StuckJob]:
    """Jobs created while a stuck-job fault was on whose result was never fetched: FAL never finished them."""
    stuck_windows = [(w.start, w.end) for w in obs.fault_windows if "stuck_rate" in w.kind.split("+")]
    by_request: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in obs.fal_log:
        if entry.get("request_id"):
            by_request[entry["request_id"]].append(entry)
    entries = submits(obs)
    by_generation = submissions_by_generation(entries)
    jobs = []
    for entry in entries:
        request_id, t = entry.get("request_id"), entry["t"]
        created = 200 <= int(entry.get("status") or 0) < 300
        if not (created and request_id and any(s <= t < e for s, e in stuck_windows)):
            continue
        calls = by_request[request_id]
        if any(c.get("kind") == "result" and c.get("status") == 200 for c in calls):
            continue
        later = [s["t"] for s in by_generation.get(entry.get("generation_id") or "", []) if s["t"] > t]
        jobs.append(StuckJob(request_id, entry.get("generation_id"), t, max(c["t"] for c in calls),
                             min(later, default=None)))
    return jobs


def unabandoned(jobs: list[StuckJob], attempt_timeout_s: float) -> list[StuckJob]:
    """Stuck jobs the service kept polling past its attempt timeout, or gave up on before it."""
    return [j for j in jobs
            if j.last_call - j.submitted > attempt_timeout_s + STUCK_SLACK_S
            or (j.resubmitted is not None and j.resubmitted - j.submitted < attempt_timeout_s)]


def abandoned_jobs(obs: Observation) -> list[str]:
    """Jobs FAL took that the service walked away from: never fetched, never cancelled, and no generation
    still waits for them (theirs ended, or they serve none). FAL runs, and bills, such a job all the same."""
    settled = {r.generation_id for r in obs.requests + obs.flood_requests if r.accepted and r.final_status}
    waiting = {r.generation_id for r in obs.requests + obs.flood_requests if r.accepted} - settled
    calls: dict[str, set[str]] = defaultdict(set)
    for entry in obs.fal_log:
        if entry.get("request_id") and (entry.get("kind") != "result" or entry.get("status") == 200):
            calls[entry["request_id"]].add(entry.get("kind", ""))
    return [entry["request_id"] for entry in submits(obs)  # a synchronous run's answer carries its result
            if entry.get("kind") == "submit" and entry.get("request_id") and 200 <= int(entry.get("status") or 0) < 300
            and entry.get("generation_id") not in waiting and not calls[entry["request_id"]] & {"result", "cancel"}]


def refused_but_worked_on(obs: Observation) -> list[str]:
    """Trace ids of requests the service refused (or never answered) whose prompt FAL received all the same:
    work the user was told was not taken, done anyway."""
    refused = {r.trace_id for r in obs.requests + obs.flood_requests if not r.accepted}
    return sorted({trace for e in submits(obs) if (trace := marked_trace(e.get("prompt"))) in refused})
