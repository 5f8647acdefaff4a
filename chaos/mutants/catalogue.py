"""The defects of the mutation matrix, as data: each one a realistic bug planted in a copy of `service/`.

A defect replaces one exact snippet of one service file (the snippet must occur exactly once, so the
matrix breaks loudly when the service drifts) and names the `ci` scenarios that should catch it on
the hardened profile, the one `make run` gates on. Every defect acts on that profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Defect:
    name: str
    breaks: str  # what goes wrong, in one line a reader understands
    file: str  # relative to the service's package directory
    old: str
    new: str
    scenarios: tuple[str, ...]  # ci scenarios expected to catch it


@dataclass(frozen=True)
class DefectFile:
    """Another service's defect matrix: its package (relative to the file), the profile its scenarios
    run on, and its defects."""

    package: Path
    profile: str
    defects: tuple[Defect, ...]
    findings: tuple[str, ...] = ()  # "scenario: check" the unmutated service fails: weaknesses it has on purpose


class CatalogueError(ValueError):
    """A defect file that cannot be read as one."""


def load_defects(path: Path) -> DefectFile:
    """Read a defect file (YAML: package, profile, findings: ["scenario: check", ...], defects: [{name,
    breaks, file, old, new, scenarios}])."""
    try:
        data = yaml.safe_load(Path(path).read_text())
        defects = tuple(Defect(**{**entry, "scenarios": tuple(entry["scenarios"])}) for entry in data["defects"])
        return DefectFile(package=(Path(path).parent / data["package"]).resolve(), profile=str(data["profile"]),
                          defects=defects, findings=tuple(map(str, data.get("findings") or ())))
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise CatalogueError(f"defect file {path}: {type(exc).__name__}: {exc}") from None


DEFECTS: tuple[Defect, ...] = (
    # --- the circuit breaker -----------------------------------------------------------------
    Defect(
        name="breaker_threshold_from_wrong_setting",
        breaks="the consecutive rule reads the rate rule's minimum call count: it opens after 10 failures, not 5",
        file="breaker.py",
        old="if self._consecutive_failures >= self.policy.failure_threshold or self._failure_rate_exceeded():",
        new="if self._consecutive_failures >= self.policy.min_calls_in_window or self._failure_rate_exceeded():",
        scenarios=("fal_http_500",),
    ),
    Defect(
        name="half_open_window_doubled",
        breaks="an open breaker waits twice its recovery timeout before letting a probe through",
        file="breaker.py",
        old="self._clock() - self._opened_at >= self.policy.recovery_timeout_s:",
        new="self._clock() - self._opened_at >= 2 * self.policy.recovery_timeout_s:",
        scenarios=("fal_http_500",),
    ),
    Defect(
        name="half_open_unlimited_probes",
        breaks="a half-open breaker lets every call through instead of one probe (the probe count never grows)",
        file="breaker.py",
        old="        self._probes_in_flight += 1\n        return True\n",
        new="        return True\n",
        scenarios=("fal_slow_errors",),
    ),
    Defect(
        name="failure_rate_rule_ignored",
        breaks="only consecutive failures open the breaker: the failure-rate rule over its window is never consulted",
        file="breaker.py",
        old="if self._consecutive_failures >= self.policy.failure_threshold or self._failure_rate_exceeded():",
        new="if self._consecutive_failures >= self.policy.failure_threshold:",
        scenarios=("fal_intermittent_errors",),
    ),
    # --- retries and backoff -----------------------------------------------------------------
    Defect(
        name="retry_budget_not_passed",
        breaks="the hardened profile builds its retry budget but never hands it to the retries: a failing FAL gets every retry",
        file="resilience.py",
        old="super().__init__(deps, breakers, retry_policy, budget)",
        new="super().__init__(deps, breakers, retry_policy, None)",
        scenarios=("fal_retry_storm",),
    ),
    Defect(
        name="backoff_in_milliseconds",
        breaks="the hardened backoff reads its base delay as milliseconds, so retries follow each other at once",
        file="retry.py",
        old="super().__init__(multiplier=base_delay_s, max=max_delay_s)",
        new="super().__init__(multiplier=base_delay_s / 1000, max=max_delay_s)",
        scenarios=("retry_backoff",),
    ),
    Defect(
        name="fixed_retry_delay",
        breaks="hardened retries sleep the fixed base delay: no exponential growth, no jitter",
        file="retry.py",
        old="            exponential=True,\n",
        new="            exponential=False,\n",
        scenarios=("retry_backoff",),
    ),
    Defect(
        name="retry_jitter_dropped",
        breaks="hardened retries back off exponentially without jitter: generations that failed together retry in step",
        file="retry.py",
        old="return self._rng.uniform(0, super().__call__(retry_state))",
        new="return super().__call__(retry_state)",
        scenarios=("retry_backoff",),
    ),
    Defect(
        name="extra_attempt",
        breaks="one attempt more than configured: 4 FAL submits per failing generation instead of 3",
        file="retry.py",
        old="        if state.attempt_number >= policy.attempts:\n",
        new="        if state.attempt_number > policy.attempts:\n",
        scenarios=("retry_backoff",),
    ),
    Defect(
        name="fal_5xx_is_final",
        breaks="a FAL 5xx counts as a final answer: one attempt only, and no strike against the breaker",
        file="resilience.py",
        old="return 400 <= error.status_code < 500 and error.status_code not in (408, 429)",
        new="return error.status_code >= 400 and error.status_code not in (408, 429)",
        scenarios=("retry_backoff", "fal_http_500"),
    ),
    Defect(
        name="refused_key_is_an_outage",
        breaks="a FAL 401 counts as FAL being down: retried three times, a strike against the breaker",
        file="resilience.py",
        old="return 400 <= error.status_code < 500 and error.status_code not in (408, 429)",
        new="return 400 <= error.status_code < 500 and error.status_code not in (401, 408, 429)",
        scenarios=("fal_key_revoked",),
    ),
    # --- admission ---------------------------------------------------------------------------
    Defect(
        name="per_user_bound_ignored",
        breaks="the per-user bound on unfinished generations is never passed to admission: one user's flood "
               "fills the queue ahead of everyone",
        file="resilience.py",
        old="settings.max_unfinished_per_user))",
        new="None))",
        scenarios=("fair_share",),
    ),
    Defect(
        name="health_checked_per_request",
        breaks="the hardened profile checks its dependencies live on every request instead of reading its health cache",
        file="resilience.py",
        old="""        for dependency in ("database", "storage", "fal"):
            if not self.deps.health.is_up(dependency):""",
        new="""        await self.deps.health.refresh()
        for dependency in ("database", "storage", "fal"):
            if not self.deps.health.is_up(dependency):""",
        scenarios=("baseline",),
    ),
    # --- timeouts ----------------------------------------------------------------------------
    Defect(
        name="fal_attempt_timeout_ignored",
        breaks="the per-attempt FAL timeout is ignored: one attempt may run until the generation deadline",
        file="resilience.py",
        old="return min(self.deps.settings.fal_attempt_timeout_s, job.deadline_at - time.monotonic())",
        new="return job.deadline_at - time.monotonic()",
        scenarios=("fal_latency", "fal_stuck_jobs"),
    ),
    Defect(
        name="storage_timeout_ignored",
        breaks="the storage client keeps its 20 s default timeout instead of the configured one (3 s in CI)",
        file="storage_gateway.py",
        old="AsyncClientOptions(storage_client_timeout=max(1, math.ceil(timeout_s)))",
        new="AsyncClientOptions()",
        scenarios=("storage_timeout",),
    ),
    # --- 503 answers ---------------------------------------------------------------------------
    Defect(
        name="fal_outage_reported_as_database",
        breaks="a FAL outage is answered 503 database_unavailable, with the database sentence",
        file="errors.py",
        old='    "fal": Reason.FAL_UNAVAILABLE,\n',
        new='    "fal": Reason.DATABASE_UNAVAILABLE,\n',
        scenarios=("fal_down",),
    ),
    Defect(
        name="database_503_says_high_load",
        breaks="a database outage's 503 carries the high-load sentence instead of the database one",
        file="errors.py",
        old='    Reason.DATABASE_UNAVAILABLE: "Database service temporarily unavailable. Please try again later.",\n',
        new="    Reason.DATABASE_UNAVAILABLE: HIGH_LOAD,\n",
        scenarios=("db_down",),
    ),
    Defect(
        name="retry_after_only_when_breaker_open",
        breaks="only breaker 503s carry Retry-After; a dependency outage's 503 has none",
        file="errors.py",
        old='        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s))), REASON_HEADER: self.reason.value}\n',
        new=('        headers = {REASON_HEADER: self.reason.value}\n'
             '        if self.reason is Reason.BREAKER_OPEN:\n'
             '            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_s)))\n'
             '        return headers\n'),
        scenarios=("db_down", "fal_down", "storage_down"),
    ),
    Defect(
        name="retry_after_in_milliseconds",
        breaks="503s give Retry-After in milliseconds: clients are told to stay away a thousand times too long",
        file="errors.py",
        old='        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s))), REASON_HEADER: self.reason.value}\n',
        new='        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s * 1000))), REASON_HEADER: self.reason.value}\n',
        scenarios=("db_down", "fal_http_500"),
    ),
    # --- results -----------------------------------------------------------------------------
    Defect(
        name="image_url_dropped",
        breaks="generations complete without their image: the signed URL is never stored",
        file="worker.py",
        old="db.complete(generation_id, self.owner, path, signed)",
        new="db.complete(generation_id, self.owner, path, None)",
        scenarios=("baseline",),
    ),
    Defect(
        name="image_truncated",
        breaks="the downloaded image is cut to half its bytes, so storage holds a corrupt PNG",
        file="fal_gateway.py",
        old="            return response.content\n",
        new="            return response.content[: len(response.content) // 2]\n",
        scenarios=("baseline",),
    ),
    Defect(
        name="expired_leases_never_reclaimed",
        breaks="a generation whose worker lost the database mid-flight is never claimed again: it is lost",
        file="db.py",
        old="OR (status = 'processing' AND lease_expires_at < now()))",
        new="OR false)",
        scenarios=("db_down",),
    ),
    # --- requests: idempotency and auth ------------------------------------------------------
    Defect(
        name="idempotency_key_ignored",
        breaks="the Idempotency-Key is not stored: a retried POST creates a second generation",
        file="app.py",
        old="idempotency_key=idempotency_key,",
        new="idempotency_key=None,",
        scenarios=("baseline",),
    ),
    Defect(
        name="auth_accepts_expired_tokens",
        breaks="expired access tokens are accepted",
        file="auth.py",
        old='options={"require": ["exp", "aud", "iss", "sub"]})',
        new='options={"require": ["exp", "aud", "iss", "sub"], "verify_exp": False})',
        scenarios=("baseline",),
    ),
    Defect(
        name="auth_ignores_audience",
        breaks="access tokens for any audience are accepted, not only 'authenticated'",
        file="auth.py",
        old='options={"require": ["exp", "aud", "iss", "sub"]})',
        new='options={"require": ["exp", "aud", "iss", "sub"], "verify_aud": False})',
        scenarios=("baseline",),
    ),
    # --- overload ------------------------------------------------------------------------------
    Defect(
        name="queue_full_answered_500",
        breaks="a full queue is not mapped to a 503: shed requests get a 500 without Retry-After",
        file="errors.py",
        old="    if isinstance(error, Overloaded):\n        return Reason.OVERLOADED\n    return None",
        new="    return None",
        scenarios=("overload",),
    ),
    Defect(
        name="admission_bound_ignored",
        breaks="the queue bound is not passed to the insert: a burst queues without end and waits grow for everyone",
        file="resilience.py",
        old="self.deps.db.insert_generation(new, settings.max_queue_depth,",
        new="self.deps.db.insert_generation(new, None,",
        scenarios=("overload",),
    ),
    # --- what the service says about itself: counters, gauges, readiness, trace context ---------
    Defect(
        name="http_503_not_counted",
        breaks="503s are answered but never counted: the 503-rate panel and alerts stay flat through an outage",
        file="app.py",
        old="metrics.http_503.labels(error.reason.value).inc()",
        new="metrics.http_503.labels(error.reason.value)",
        scenarios=("fal_down", "db_down", "storage_down", "fal_http_500"),
    ),
    Defect(
        name="http_503_counted_as_overloaded",
        breaks="every 503 is counted as an overloaded queue, whatever its cause: dashboards blame load for an outage",
        file="app.py",
        old="metrics.http_503.labels(error.reason.value).inc()",
        new='metrics.http_503.labels("overloaded").inc()',
        scenarios=("fal_down", "db_down", "storage_down"),
    ),
    Defect(
        name="breaker_gauge_never_set",
        breaks="breaker transitions are counted but the state gauge is never set: dashboards show it closed",
        file="metrics.py",
        old="self.breaker_state.labels(dependency).set(BREAKER_STATE_VALUES[new])",
        new="self.breaker_state.labels(dependency)",
        scenarios=("fal_http_500",),
    ),
    Defect(
        name="breaker_gauge_never_closes",
        breaks="the state gauge is set on opening but not back on closing: dashboards show the breaker open for ever",
        file="metrics.py",
        old="self.breaker_state.labels(dependency).set(BREAKER_STATE_VALUES[new])",
        new="self.breaker_state.labels(dependency).set(max(BREAKER_STATE_VALUES[new], 1))",
        scenarios=("fal_http_500",),
    ),
    Defect(
        name="503_span_without_cause",
        breaks="a 503's server span no longer names its cause: a trace of a refused request does not say why",
        file="app.py",
        old='trace.get_current_span().set_attribute("genchaos.503_reason", error.reason.value)',
        new="trace.get_current_span()",
        scenarios=("fal_down", "db_down"),
    ),
    Defect(
        name="generations_not_counted",
        breaks="generations reaching a terminal status are not counted: the success-rate panel has no data",
        file="worker.py",
        old="metrics.generations.labels(status).inc()",
        new="metrics.generations.labels(status)",
        scenarios=("baseline",),
    ),
    Defect(
        name="duration_histogram_in_milliseconds",
        breaks="generation durations are observed in milliseconds into a seconds histogram: every latency "
               "panel reads a thousand times too slow",
        file="worker.py",
        old="metrics.generation_duration.labels(status).observe(duration)",
        new="metrics.generation_duration.labels(status).observe(duration * 1000)",
        scenarios=("baseline",),
    ),
    Defect(
        name="trace_context_not_stored",
        breaks="the request's trace context is not stored with the generation: its worker and FAL spans are "
               "in traces of their own, and no request can be followed into FAL",
        file="app.py",
        old="traceparent=current_traceparent())",
        new="traceparent=None)",
        scenarios=("baseline", "fal_http_500"),
    ),
    Defect(
        name="readyz_ready_while_dependency_down",
        breaks="/readyz answers 200 ready while a dependency is down: load balancers keep sending traffic",
        file="app.py",
        old="down = [name for name, h in health.health.items() if h.up is False]",
        new="down: list[str] = []",
        scenarios=("fal_down", "db_down", "storage_down"),
    ),
    Defect(
        name="readyz_sees_only_the_database",
        breaks="/readyz reports the database only: FAL or storage down still reads ready",
        file="app.py",
        old="down = [name for name, h in health.health.items() if h.up is False]",
        new='down = [name for name, h in health.health.items() if h.up is False and name == "database"]',
        scenarios=("fal_down", "storage_down"),
    ),
)
