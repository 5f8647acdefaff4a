"""Every metric a scenario check can name, declared once: its scope and how it is judged.

``scope`` says where a metric lives: ``request`` metrics are computed from the requests of any phase
or window; ``run`` metrics describe the whole run (breaker timeline, what the dependencies saw).
``rate`` metrics are proportions of requests, judged with a Wilson interval (``chaos.judge.stats``);
the rest are counts, seconds or flags, judged exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["request", "run"]
Kind = Literal["rate", "count", "seconds", "ratio", "flag"]


@dataclass(frozen=True)
class Metric:
    name: str
    scope: Scope
    kind: Kind
    meaning: str


def _declare(*metrics: Metric) -> dict[str, Metric]:
    return {m.name: m for m in metrics}


METRICS: dict[str, Metric] = _declare(
    # Requests of a phase or window (the runner's own view of every POST and its generation).
    Metric("requests", "request", "count", "POST /api/v1/generations sent"),
    Metric("success_rate", "request", "rate", "requests whose generation completed with a verified image"),
    Metric("rate_503", "request", "rate", "requests answered 503"),
    Metric("rate_500", "request", "rate", "requests answered 5xx other than 503, or not answered at all"),
    Metric("accepted_rate", "request", "rate", "requests accepted (the contract's accepted status, with an id)"),
    Metric("auth_failures", "request", "count", "requests with valid tokens answered 401/403"),
    Metric("lost_generations", "request", "count", "accepted generations never seen terminal"),
    Metric("failed_generations", "request", "count", "accepted generations that ended failed"),
    Metric("image_mismatches", "request", "count",
           "completed generations whose signed URL did not serve the bytes FAL produced"),
    Metric("latency_mean_s", "request", "seconds", "mean time from POST to a completed generation"),
    Metric("latency_p50_s", "request", "seconds", "median time from POST to a completed generation"),
    Metric("latency_p95_s", "request", "seconds", "95th percentile of that time"),
    Metric("latency_p99_s", "request", "seconds", "99th percentile of that time"),
    Metric("max_generation_s", "request", "seconds", "longest time from POST to a terminal generation"),
    Metric("missing_retry_after", "request", "count", "503s without a whole-seconds Retry-After"),
    Metric("wrong_503_detail", "request", "count", "503s whose sentence is not their reason's"),
    Metric("idempotency_violations", "request", "count",
           "replays of a POST with the same Idempotency-Key that did not return the same generation"),
    # The whole run.
    Metric("misattributed_503", "run", "count",
           "503s that do not name the dependency the harness broke (reason header or sentence)"),
    Metric("retry_after_out_of_range", "run", "count",
           "503s whose Retry-After is under 1 s or longer than any wait the service publishes "
           "(its outage retry-after, its breaker's recovery window)"),
    Metric("breaker_opened", "run", "flag", "a breaker was seen open"),
    Metric("time_to_open_s", "run", "seconds", "first fault start to the breaker seen open"),
    Metric("failures_to_open", "run", "count",
           "consecutive failed FAL calls, as FAL saw them, when the breaker was seen open"),
    Metric("breaker_opened_at_threshold", "run", "flag",
           "the breaker opened at the configured count of consecutive failures FAL saw"),
    Metric("breaker_opened_on_failure_rate", "run", "flag",
           "once FAL's answers over the breaker's window crossed its failure rate, FAL went quiet"),
    Metric("breaker_half_opened", "run", "flag", "a breaker was seen half-open, or FAL saw a probe after it opened"),
    Metric("open_to_probe_s", "run", "seconds", "breaker opened to the next call FAL saw (the probe)"),
    Metric("breaker_probed_after_window", "run", "flag",
           "FAL saw no call while the breaker was open and the probe came at the configured window"),
    Metric("probe_calls", "run", "count", "calls FAL saw in the half-open spell a failed probe started"),
    Metric("probes_within_limit", "run", "flag",
           "FAL saw no more calls in a half-open spell than the service's published probe limit"),
    Metric("open_duration_s", "run", "seconds", "how long a breaker was seen open"),
    Metric("recovery_s", "run", "seconds", "last fault end to the first success with every breaker closed"),
    Metric("upstream_attempts_per_generation", "run", "ratio",
           "FAL submits FAL saw for the accepted generations (by their prompts' markers), per generation"),
    Metric("fal_submissions_per_generation", "run", "ratio", "FAL submits FAL saw, per accepted generation"),
    Metric("duplicate_fal_jobs", "run", "count", "FAL jobs beyond the first created for one generation"),
    Metric("max_fal_submissions_per_generation", "run", "count", "most FAL submits FAL saw for one generation"),
    Metric("fal_retries", "run", "count", "FAL submits after a generation's first, as FAL saw them"),
    Metric("retry_allowance", "run", "count",
           "the most retries the published retry budget allows for the first attempts the harness saw"),
    Metric("retries_within_budget", "run", "flag", "FAL saw no more retries than the retry budget allows"),
    Metric("backoff_grows", "run", "flag",
           "FAL saw jittered exponential backoff: a first delay of at least a quarter of the base, then x1.35"),
    Metric("retry_delay_spread", "run", "ratio",
           "how much generations' first retry delays differ as FAL saw them (standard deviation / mean): "
           "~0.58 for full jitter, ~0 when they all retry in step"),
    Metric("live_checks_per_request", "run", "ratio",
           "storage health reads during the load beyond one per published health interval, per request: "
           "~1 when every request checks its dependencies live, ~0 when health is cached"),
    Metric("forged_tokens_accepted", "run", "count",
           "forged or stale tokens (expired, wrong audience, issuer, secret, role, subject, the report's "
           "unsigned supabase_token_<uuid>) not refused"),
    Metric("cross_user_reads", "run", "count",
           "another user's generations a user got to see, by id (anything but 404) or in its own list"),
    Metric("fal_faulted_calls", "run", "count", "FAL calls answered with an injected error (429, 5xx)"),
    Metric("stuck_fal_jobs", "run", "count", "FAL jobs that never completed (stuck)"),
    Metric("flood_requests", "run", "count", "POSTs the flooding user sent (load.flood_rate_per_s)"),
    Metric("flood_accepted", "run", "count", "the flooding user's POSTs accepted"),
    Metric("flood_refused_429", "run", "count", "the flooding user's POSTs answered 429 with a Retry-After"),
    Metric("fal_refused_key_calls", "run", "count", "FAL calls answered 401: the service's key was refused"),
    Metric("unexplained_key_failures", "run", "count",
           "generations that failed while FAL refused the key whose error does not name the key"),
    Metric("unabandoned_stuck_jobs", "run", "count",
           "stuck FAL jobs the service kept waiting on past the attempt timeout"),
    Metric("admitted_beyond_bound", "run", "count",
           "generations accepted while the claimed admission bound of others were surely unfinished"),
    Metric("shed_requests", "run", "count", "POSTs refused for load: a 503 naming an overloaded queue, or a 429"),
    # What the service said about itself, against what happened (chaos.judge.telemetry_truth).
    Metric("miscounted_503s", "run", "count",
           "503s by which the service's 503 counter, by cause, differs from the 503s clients received "
           "(beyond one per unanswered call)"),
    Metric("miscounted_generations", "run", "count",
           "generations by which the service's outcome counter differs from the outcomes clients polled"),
    Metric("misreported_durations", "run", "count",
           "ways the service's generation-duration histogram disagrees with the times clients measured "
           "(which generations, and their mean)"),
    Metric("breaker_state_disagreements", "run", "count",
           "times the breaker states the service published (or its gauge) contradicted the breaker clients "
           "ran into"),
    Metric("readiness_disagreements", "run", "count",
           "outages readiness did not report, recoveries it did not report, and false alarms, within the "
           "health interval plus 1 s"),
    Metric("unjoined_traces", "run", "count",
           "generations with a FAL job whose trace context does not join the request that created it"),
    Metric("abandoned_fal_jobs", "run", "count",
           "FAL jobs never fetched nor cancelled that no generation waits for: work FAL runs and bills for nothing"),
    Metric("unexplained_503_spans", "run", "count",
           "requests answered 503 whose trace has no span naming the cause their answer gave"),
    Metric("slo_rule_disagreements", "run", "count",
           "the service's success-ratio and 503-ratio recording rules, evaluated by a Prometheus that scraped "
           "the run, off the harness's own count of its API answers by more than 0.01"),
    Metric("fast_burn_alert_fired", "run", "flag",
           "the service's fast-burn alert fired while the run went on (a Prometheus evaluated its rules)"),
    Metric("fal_timeouts", "run", "count", "FAL calls the service counted as timed out (health checks aside)"),
    Metric("storage_timeouts", "run", "count", "storage calls the service counted as timed out (health checks aside)"),
    Metric("database_timeouts", "run", "count", "database calls the service counted as timed out (health checks aside)"),
)

REQUEST_METRICS = frozenset(name for name, m in METRICS.items() if m.scope == "request")
RUN_METRICS = frozenset(name for name, m in METRICS.items() if m.scope == "run")
RATE_METRICS = frozenset(name for name, m in METRICS.items() if m.kind == "rate")

# The report's claims a scenario can be evidence for (beyond those every scenario informs);
# ``chaos.judge.claims`` judges each.
CLAIM_KEYS = ("breaker_opens", "breaker_half_opens", "recovery_30s", "retries", "attempt_timeout")

# 503 reasons that name no dependency; a scenario may allow them (``allowed_503_reasons``).
GENERIC_REASONS = ("breaker_open", "overloaded")
