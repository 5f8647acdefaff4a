"""Metrics computed from an Observation: per phase for request metrics, per run for the breaker,
recovery, upstream amplification and what the dependencies saw. Names are declared in
``chaos.judge.registry``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from chaos.judge import admission, fal_log, telemetry_truth
from chaos.judge.attribution import misattributed_503
from chaos.run.observations import Observation, RequestRecord

EXEMPLAR_CANDIDATES = 8  # per kind and scenario: enough to find one whose spans reached the traces file


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def retry_after_seconds(record: RequestRecord) -> int | None:
    """The response's Retry-After in whole seconds; None when it has none or another form."""
    value = (record.retry_after or "").strip()
    return int(value) if value.isdigit() else None


def is_proper_503(record: RequestRecord) -> tuple[bool, bool]:
    """(has a whole-seconds Retry-After, carries the exact sentence of its reason) for a 503."""
    retry_after_ok = retry_after_seconds(record) is not None
    detail_ok = bool(record.causes)
    return retry_after_ok, detail_ok


def is_server_error(record: RequestRecord) -> bool:
    """A 5xx other than a 503, or no answer at all (what rate_500 counts)."""
    return record.status is None or (record.status >= 500 and record.status != 503)


def server_error_examples(records: list[RequestRecord], limit: int = 3) -> list[str]:
    """A few of the requests rate_500 counts, in words: when, and what came back (or why nothing did)."""
    return [f"at {r.t:.1f}s: {r.status or 'no answer'}" + (f" ({r.detail})" if r.detail else "")
            for r in records if is_server_error(r)][:limit]


def rate_counts(records: list[RequestRecord]) -> dict[str, tuple[int, int]]:
    """(matching requests, requests) behind each rate metric, for the statistical verdicts."""
    total = len(records)
    return {
        "success_rate": (sum(r.succeeded for r in records), total),
        "rate_503": (sum(r.status == 503 for r in records), total),
        "rate_500": (sum(map(is_server_error, records)), total),
        "accepted_rate": (sum(r.accepted for r in records), total),
    }


def request_metrics(records: list[RequestRecord]) -> dict[str, Any]:
    """Metrics of a set of requests (a phase, a window or the whole run)."""
    accepted = [r for r in records if r.accepted]
    latencies = [r.generation_latency_s for r in accepted if r.succeeded]
    proper = [is_proper_503(r) for r in records if r.status == 503]
    return {
        "requests": len(records),
        **{name: _ratio(part, whole) for name, (part, whole) in rate_counts(records).items()},
        "auth_failures": sum(r.status in (401, 403) for r in records),
        "lost_generations": sum(r.final_status is None for r in accepted),
        "failed_generations": sum(r.final_status == "failed" for r in accepted),
        "image_mismatches": sum(r.image_ok is False for r in accepted),
        "latency_mean_s": sum(latencies) / len(latencies) if latencies else None,
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "latency_p99_s": percentile(latencies, 99),
        "max_generation_s": max((r.generation_latency_s for r in accepted if r.final_status), default=None),
        "missing_retry_after": sum(not ok for ok, _ in proper),
        "wrong_503_detail": sum(not ok for _, ok in proper),
        "idempotency_violations": sum(r.replay_ok is False for r in records),
    }


def _lifetime_end(record: RequestRecord) -> float:
    """When a request stopped mattering: its generation's terminal time, its response, or never (lost)."""
    if record.accepted:
        return record.terminal_t if record.terminal_t is not None else math.inf
    return record.t + record.latency_s


def phase_records(obs: Observation, phase: str, settle_s: float = 0.0) -> list[RequestRecord]:
    """Requests of a phase, judged by their lifetime (sent .. generation terminal), so a request sent
    just before a fault but processed during it counts as during, not before. ``settle_s`` extends
    each fault window for the after and outside phases."""
    windows = [(w.start, w.end) for w in obs.fault_windows]
    if phase == "all":
        return list(obs.requests)
    if not windows:  # without faults the whole run is before (and outside) any fault
        return list(obs.requests) if phase in ("before", "outside") else []

    def overlaps(record: RequestRecord, extend: float) -> bool:
        return any(record.t < e + extend and _lifetime_end(record) >= s for s, e in windows)

    if phase == "before":
        first_start = min(s for s, _ in windows)
        return [r for r in obs.requests if _lifetime_end(r) < first_start]
    if phase == "during":
        return [r for r in obs.requests if overlaps(r, 0.0)]
    if phase == "after":
        last_end = max(e for _, e in windows)
        return [r for r in obs.requests if r.t >= last_end + settle_s]
    if phase == "outside":
        return [r for r in obs.requests if not overlaps(r, settle_s)]
    raise ValueError(f"unknown phase {phase!r}")


def windows_of(records: list[RequestRecord], window_s: float) -> list[tuple[float, list[RequestRecord]]]:
    """Sliding windows (step a quarter of the length) over the span of ``records``: (start, members)."""
    if not records:
        return []
    first, last = min(r.t for r in records), max(r.t for r in records)
    step = window_s / 4
    out = []
    start = first
    while True:
        out.append((start, [r for r in records if start <= r.t < start + window_s]))
        if start + window_s > last:
            return out
        start += step


def counter_sum(counters: dict[str, float], name: str, **labels: str) -> float:
    """Sum of a flattened Prometheus series over every label set that includes ``labels``."""
    total = 0.0
    for key, value in counters.items():
        metric, _, label_text = key.partition("{")
        if metric != name:
            continue
        present = dict(pair.split("=", 1) for pair in label_text.rstrip("}").split(",") if pair)
        if all(present.get(k) == v for k, v in labels.items()):
            total += value
    return total


def _breaker_times(obs: Observation) -> tuple[float | None, float | None, bool, float | None]:
    """(first time any breaker was seen open, first time after that none was open, whether one was
    seen half-open, first all-closed time after the last fault ended)."""
    opened = next((s.t for s in obs.breaker_samples if "open" in s.states.values()), None)
    left_open = None if opened is None else next(
        (s.t for s in obs.breaker_samples if s.t > opened and "open" not in s.states.values()), None)
    half_open_seen = any("half_open" in s.states.values() for s in obs.breaker_samples)
    last_end = max((w.end for w in obs.fault_windows), default=None)
    closed_after = None
    if last_end is not None:
        closed_after = next((s.t for s in obs.breaker_samples
                             if s.t >= last_end and all(v == "closed" for v in s.states.values())), None)
    return opened, left_open, half_open_seen, closed_after


def counted(obs: Observation, dependency: str, outcome: str) -> int:
    """Calls to ``dependency`` ending in ``outcome`` that the service counted during the run, on the
    generation path (its health checks time out on their own, shorter clock and do not count), in the
    counter its contract names; 0 without one (a second witness only: see chaos.judge.effects)."""
    name = obs.upstream_metric
    if name is None:
        return 0

    def total(counters: dict[str, float]) -> float:
        return (counter_sum(counters, name, dependency=dependency, outcome=outcome)
                - counter_sum(counters, name, dependency=dependency, operation="check", outcome=outcome))
    return int(total(obs.service_counters) - total(obs.counters_at_start))


def _recovery(obs: Observation, opened: float | None, closed_after: float | None) -> float | None:
    """Last fault end to when the service took work again: every breaker closed and the first request
    it went on to complete was sent (how long that generation then took is a latency, not recovery)."""
    last_end = max((w.end for w in obs.fault_windows), default=None)
    if last_end is None:
        return None
    first_success = min((r.t for r in obs.requests if r.t >= last_end and r.succeeded), default=None)
    if first_success is None or (opened is not None and closed_after is None):
        return None
    return max(first_success, closed_after or last_end) - last_end


# Run metrics judged against published timings: without them there is no evidence either way.
TIMINGS_NEEDED = {
    "breaker_opened_on_failure_rate": ("breaker_window_s", "breaker_failure_rate_threshold", "breaker_min_calls_in_window"),
    "retries_within_budget": ("retry_budget_ratio", "retry_budget_min_per_s", "retry_budget_ttl_s"),
    "retry_allowance": ("retry_budget_ratio", "retry_budget_min_per_s", "retry_budget_ttl_s"),
    "retry_after_out_of_range": ("unavailable_retry_after_s", "breaker_recovery_timeout_s"),
    "live_checks_per_request": ("health_refresh_interval_s",),
}


def missing_timings(obs: Observation) -> dict[str, str]:
    """The run metrics the timings of this run cannot decide, each with the timings it lacks."""
    missing = {}
    for metric, names in TIMINGS_NEEDED.items():
        lacking = [name for name in names if name not in obs.timings]
        if lacking:
            missing[metric] = f"the contract gives no {', '.join(lacking)}"
    return missing


def run_metrics(obs: Observation) -> dict[str, Any]:
    """Metrics of the whole run: breaker timeline, recovery, amplification and what FAL saw."""
    opened, left_open, half_open_seen, closed_after = _breaker_times(obs)
    first_start = min((w.start for w in obs.fault_windows), default=None)
    generations = sum(r.accepted for r in obs.requests)
    fal_submits = fal_log.submits(obs)
    by_generation = fal_log.submissions_by_generation(fal_submits)
    jobs_created = [sum(200 <= int(e.get("status") or 0) < 300 for e in entries) for entries in by_generation.values()]
    timings = obs.timings
    window = timings.get("breaker_recovery_timeout_s", 30.0)
    breaker = fal_log.breaker_from_fal(obs, window)
    stuck = fal_log.stuck_jobs(obs)
    abandoned = fal_log.abandoned_jobs(obs)
    gaps = fal_log.retry_gaps(by_generation)
    return {
        "breaker_opened": opened is not None,
        "time_to_open_s": None if opened is None or first_start is None else max(0.0, opened - first_start),
        "failures_to_open": breaker.failures_to_open,
        "failures_in_burst": breaker.failures_in_burst,
        "breaker_opened_at_threshold": breaker.opened_at_threshold(timings.get("breaker_failure_threshold", 5),
                                                                   timings.get("worker_concurrency", 4)),
        "breaker_opened_on_failure_rate": _opened_on_failure_rate(obs, fal_submits, window),
        **_retry_budget(obs, fal_submits, by_generation),
        "breaker_half_opened": half_open_seen or breaker.probe_at is not None,
        "open_to_probe_s": breaker.open_to_probe_s(),
        "breaker_probed_after_window": breaker.probed_after_window(window, _arrival_gap_s(obs)),
        "open_duration_s": None if opened is None or left_open is None else left_open - opened,
        "recovery_s": _recovery(obs, opened, closed_after),
        "misattributed_503": misattributed_503(obs),
        "retry_after_out_of_range": _retry_after_out_of_range(obs),
        "upstream_attempts_per_generation": (sum(map(len, by_generation.values())) / generations
                                             if generations else None),
        "fal_submissions_per_generation": len(fal_submits) / generations if generations else None,
        "max_fal_submissions_per_generation": max((len(v) for v in by_generation.values()), default=0),
        "duplicate_fal_jobs": sum(n - 1 for n in jobs_created if n > 1),
        "retry_gaps_s": gaps,
        "backoff_grows": fal_log.backoff_grows(gaps, timings.get("retry_base_delay_s", 5.0)),
        "retry_delay_spread": fal_log.retry_delay_spread(by_generation),
        "live_checks_per_request": _live_checks_per_request(obs),
        "probe_calls": breaker.probe_calls,
        "probes_within_limit": None if breaker.probe_calls is None
        else breaker.probe_calls <= timings.get("breaker_half_open_max_calls", 1),
        "forged_tokens_accepted": len(obs.accepted_forgeries),
        "forged_tokens": list(obs.accepted_forgeries),
        "cross_user_reads": len(obs.cross_user_reads),
        "cross_user_leaks": list(obs.cross_user_reads),
        "fal_faulted_calls": fal_log.faulted_calls(obs),
        "stuck_fal_jobs": len(stuck),
        "flood_requests": len(obs.flood_requests),
        "flood_accepted": sum(r.accepted for r in obs.flood_requests),
        "flood_refused_429": sum(r.status == 429 and retry_after_seconds(r) is not None for r in obs.flood_requests),
        "fal_refused_key_calls": fal_log.refused_key_calls(obs),
        "unexplained_key_failures": _unexplained_key_failures(obs),
        "unabandoned_stuck_jobs": len(fal_log.unabandoned(stuck, timings.get("fal_attempt_timeout_s", 300.0))),
        "abandoned_fal_jobs": len(abandoned),
        "abandoned_jobs": abandoned,
        "longest_stuck_job_s": max((j.last_call - j.submitted for j in stuck), default=None),
        **{f"{dependency}_timeouts": counted(obs, dependency, "timeout") for dependency in ("fal", "storage", "database")},
        "admitted_beyond_bound": admission.admitted_beyond_bound(obs),
        "shed_requests": admission.shed_requests(obs),
        **telemetry_truth.disagreements(obs),
        "fast_burn_alert_fired": obs.slo_reading.fast_burn_fired if obs.slo_reading else None,
        "breaker_states": breaker_states(obs),
        "exemplar_candidates": exemplar_candidates(obs, by_generation),
    }


def _unexplained_key_failures(obs: Observation) -> int:
    """Generations that failed while FAL refused the key (or within settle_s after) whose error does not
    say the key was the problem: the user and the operator must be told why, not "FAL is down"."""
    windows = fal_log.key_refusal_windows(obs)
    return sum(r.final_status == "failed" and "key" not in (r.error or "").lower()
               and any(start <= (r.terminal_t or r.t) and r.t < end + obs.settle_s for start, end in windows)
               for r in obs.requests)


def _opened_on_failure_rate(obs: Observation, fal_submits: list[dict[str, Any]],
                            recovery_window_s: float) -> bool | None:
    """The failure-rate rule judged from FAL's log against the rule the service publishes in /readyz
    (the report's profile publishes it too but counts consecutive failures only, so a scenario checks
    this on the hardened profile); None from a service that publishes no such rule."""
    timings = obs.timings
    if not {"breaker_window_s", "breaker_failure_rate_threshold", "breaker_min_calls_in_window"} <= timings.keys():
        return None
    load_ended = max((r.t for r in obs.requests), default=0.0)
    return fal_log.opened_on_failure_rate(
        fal_submits, timings["breaker_window_s"], timings["breaker_failure_rate_threshold"],
        int(timings["breaker_min_calls_in_window"]), recovery_window_s / 2, int(timings.get("worker_concurrency", 4)),
        load_ended)


BUDGETED_CALLS_AFTER_FAL = 3  # a generation's download, upload and signed URL: each a first attempt


def _retry_budget(obs: Observation, fal_submits: list[dict[str, Any]],
                  by_generation: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The retries FAL saw (submits after a generation's first) against what the published retry
    budget allows. Every generation that reached FAL made a first attempt, and one that FAL took a job
    for at most three more (its download, upload and signed URL spend from the same budget), so the
    allowance is never below what a correct budget allows. (A generation claimed again after a lost
    lease starts its attempts anew, which the harness does not count: judge scenarios without that.)"""
    timings = obs.timings
    retries = sum(len(entries) - 1 for entries in by_generation.values())
    if not {"retry_budget_ratio", "retry_budget_min_per_s", "retry_budget_ttl_s"} <= timings.keys():
        return {"fal_retries": retries, "retry_allowance": None, "retries_within_budget": None}
    taken = sum(any(200 <= int(e.get("status") or 0) < 300 for e in entries) for entries in by_generation.values())
    allowance = fal_log.retry_allowance(
        fal_submits, len(by_generation) + BUDGETED_CALLS_AFTER_FAL * taken,
        timings["retry_budget_ratio"], timings["retry_budget_min_per_s"], timings["retry_budget_ttl_s"])
    return {"fal_retries": retries, "retry_allowance": round(allowance, 1), "retries_within_budget": retries <= allowance}


def _live_checks_per_request(obs: Observation) -> float | None:
    """Storage health reads (GET of the bucket) the storage emulator saw during the load beyond the
    health monitor's own, one per published ``health_refresh_interval_s``, per request sent: about 1
    from a service that checks its dependencies live on every request, about 0 from one that serves
    them from its cache. Each service process runs its own monitor, so this reads one process's
    stack (the embedded one). None without requests or a published interval, and when the log shows
    no read at all: the monitor reads on every interval, so the harness did not see storage's log."""
    interval = obs.timings.get("health_refresh_interval_s")
    reads = sum(_is_bucket_read(e) and 0 <= e["t"] <= obs.duration_s for e in obs.storage_log)
    if not obs.requests or not interval or not reads:
        return None
    return round(max(0.0, reads - obs.duration_s / interval) / len(obs.requests), 2)


def _retry_after_out_of_range(obs: Observation) -> int | None:
    """503s whose whole-seconds Retry-After asks for less than a second (a client retries at once, into
    the outage) or for longer than any wait the service publishes: its own retry-after for an outage,
    or the time an open breaker waits before probing (a value in the wrong unit shows here). None
    without the published timings."""
    timings = obs.timings
    if not {"unavailable_retry_after_s", "breaker_recovery_timeout_s"} <= timings.keys():
        return None
    longest = math.ceil(max(timings["unavailable_retry_after_s"], timings["breaker_recovery_timeout_s"]))
    values = [retry_after_seconds(r) for r in obs.requests if r.status == 503]
    return sum(not 1 <= value <= longest for value in values if value is not None)


def _is_bucket_read(entry: dict[str, Any]) -> bool:
    """GET /storage/v1/bucket/{id}: how the service checks storage (supabase's get_bucket)."""
    path = entry.get("path", "").rstrip("/").rsplit("/", 2)
    return entry.get("method") == "GET" and entry.get("kind") == "bucket" and len(path) == 3 and path[1] == "bucket"


def _arrival_gap_s(obs: Observation) -> float:
    """The longest pause between two consecutive requests: how late a probe's trigger can come."""
    times = sorted(r.t for r in obs.requests)
    return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


def breaker_states(obs: Observation) -> list[dict[str, Any]]:
    """The sampled breaker states as intervals, per breaker: {breaker, state, start, end}. A state lasts
    from the sample that first saw it to the next sample that saw another (or the last sample)."""
    intervals: list[dict[str, Any]] = []
    current: dict[str, dict[str, Any]] = {}
    for sample in obs.breaker_samples:
        for breaker, state in sample.states.items():
            interval = current.get(breaker)
            if interval is not None:
                interval["end"] = sample.t
                if interval["state"] == state:
                    continue
            current[breaker] = {"breaker": breaker, "state": state, "start": sample.t, "end": sample.t}
            intervals.append(current[breaker])
    return intervals


def exemplar_candidates(obs: Observation, by_generation: dict[str, list[dict[str, Any]]],
                        limit: int = EXEMPLAR_CANDIDATES) -> dict[str, Any]:
    """Requests worth a trace waterfall in the report: trace ids of requests turned away by an open
    breaker, and accepted generations (generation id -> request trace id) most likely to have been
    retried first (most FAL submissions, then longest)."""
    fast_failures = [r.trace_id for r in obs.requests if r.status == 503 and "breaker_open" in r.causes]
    accepted = sorted((r for r in obs.requests if r.accepted),
                      key=lambda r: (-len(by_generation.get(r.generation_id, ())), -(r.generation_latency_s or 0.0)))
    return {"breaker_open": fast_failures[:limit],
            "generations": {r.generation_id: r.trace_id for r in accepted[:limit]}}


def reasons_503(records: list[RequestRecord]) -> dict[str, int]:
    return dict(Counter(r.reason_503 or "/".join(r.causes) or "unlabelled" for r in records if r.status == 503))


def generation_errors(records: list[RequestRecord], top: int = 5) -> dict[str, int]:
    """The most common errors of failed generations, to explain a low success rate."""
    return dict(Counter((r.error or "no error given")[:160] for r in records
                        if r.final_status == "failed").most_common(top))


def timeline(obs: Observation, bucket_s: float = 1.0) -> list[dict[str, float | None]]:
    """Per-bucket (by send time) request count, success rate, 503 rate and the p50/p95/p99 generation
    latency of the bucket's completed generations, for the report's charts."""
    buckets: dict[int, list[RequestRecord]] = defaultdict(list)
    for record in obs.requests:
        buckets[int(record.t // bucket_s)].append(record)
    series = []
    for index in range(int(obs.duration_s // bucket_s) + 1):
        members = buckets.get(index, [])
        latencies = [r.generation_latency_s for r in members if r.succeeded]
        series.append({"t": index * bucket_s, "requests": len(members),
                       "success_rate": _ratio(sum(r.succeeded for r in members), len(members)),
                       "rate_503": _ratio(sum(r.status == 503 for r in members), len(members)),
                       **{f"latency_p{q}_s": percentile(latencies, q) for q in (50, 95, 99)}})
    return series
