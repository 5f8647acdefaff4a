"""What one scenario run recorded: plain data, the input of metrics, verdicts and claims.

Times are seconds since the scenario started (wall clock, so they line up with the emulator's
request log, which records unix time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TERMINAL_STATUSES = frozenset({"completed", "failed"})


@dataclass
class RequestRecord:
    """One POST /api/v1/generations and, when accepted, how its generation ended."""

    t: float  # when the request was sent
    status: int | None  # HTTP status; None when the request itself failed (connection error)
    latency_s: float
    trace_id: str
    detail: str | None = None  # error body detail, or the transport error
    retry_after: str | None = None
    reason_503: str | None = None  # the cause header's value, where the contract names one
    causes: tuple[str, ...] = ()  # a 503's causes as its sentence names them (and its cause header agrees)
    generation_id: str | None = None
    final_status: str | None = None  # completed | failed, None while never seen terminal
    terminal_t: float | None = None  # when the runner saw it terminal
    error: str | None = None  # the generation's error when it failed
    image_url: str | None = None  # the signed URL a completed generation serves its image at
    image_ok: bool | None = None  # completed: its signed URL served the bytes FAL produced (None: not checked)
    replay_ok: bool | None = None  # replayed with its Idempotency-Key: the same generation came back

    @property
    def accepted(self) -> bool:
        """Answered with one of the contract's accepted statuses and a generation id."""
        return self.generation_id is not None

    @property
    def succeeded(self) -> bool:
        """Completed, and (when checked) its image is the one FAL produced: a wrong image is no success."""
        return self.final_status == "completed" and self.image_ok is not False

    @property
    def generation_latency_s(self) -> float | None:
        return None if self.terminal_t is None else self.terminal_t - self.t


@dataclass(frozen=True)
class BreakerSample:
    """Breaker states from one /readyz read."""

    t: float
    states: dict[str, str]  # dependency -> closed | open | half_open


@dataclass(frozen=True)
class ReadinessSample:
    """One read of the service's readiness endpoint: did it say ready (a 2xx)?"""

    t: float
    ready: bool


@dataclass(frozen=True)
class SloReading:
    """What the service's own SLO rules recorded for a run, and whether its fast-burn alert fired."""

    success_ratio: float | None
    ratio_503: float | None
    fast_burn_fired: bool | None
    unseen_answers: dict[int, int] = field(default_factory=dict)  # by status: answers no rate() could count


@dataclass
class FaultWindow:
    """When one fault was applied, what it broke, and the bytes its proxy moved meanwhile."""

    start: float
    end: float
    description: str
    dependency: str  # fal | database | storage: what the fault breaks (the harness's ground truth)
    kind: str  # the toxic type, "down", or the FAL behaviour fields joined by "+"
    proxy: str | None = None  # the Toxiproxy proxy it acts on (None for FAL behaviours)
    attributes: dict[str, Any] = field(default_factory=dict)  # the toxic's attributes or FAL behaviour values
    proxy_bytes: float | None = None  # bytes through the proxy while the fault was on (None: unmeasured)


@dataclass
class Observation:
    """Everything recorded while one scenario ran against one profile."""

    scenario: str
    profile: str
    timing: str
    started_at: float  # unix time of t=0
    duration_s: float  # how long the load ran
    requests: list[RequestRecord] = field(default_factory=list)
    flood_requests: list[RequestRecord] = field(default_factory=list)  # the flooding user's (Load.flood_rate_per_s)
    breaker_samples: list[BreakerSample] = field(default_factory=list)  # published, else as clients saw them
    # What the service said about itself while the run went on, for the checks of its telemetry.
    published_breakers: list[BreakerSample] = field(default_factory=list)  # where its contract says it publishes
    gauge_samples: list[BreakerSample] = field(default_factory=list)  # its breaker-state gauge, decoded
    fal_breaker: str = "fal"  # FAL's breaker's name in those
    readiness_samples: list[ReadinessSample] = field(default_factory=list)
    counted_503s: dict[str, int] | None = None  # its 503 counter's growth by sentence group (None: no counter)
    counted_outcomes: dict[str, int] | None = None  # its generations counter's growth, completed/failed
    counted_durations: tuple[int, float] | None = None  # its duration histogram's completed (count, seconds)
    received_503s: dict[str, int] = field(default_factory=dict)  # 503s the harness received, by sentence group
    unanswered_calls: int = 0  # API calls the harness never got an answer to (the service may have counted them)
    slo_reading: SloReading | None = None  # from a Prometheus that scraped the run (None: not evaluated)
    api_answers: int = 0  # answers to the harness's API calls between the two scrapes...
    api_server_errors: int = 0  # ...and those that were 5xx
    trace_joins: dict[str, list[str]] | None = None
    span_causes: dict[str, list[str]] | None = None  # a 503'd request's trace -> causes its spans name  # trace FAL saw -> traces it joins (None: no traces file)
    fault_windows: list[FaultWindow] = field(default_factory=list)
    fal_log: list[dict[str, Any]] = field(default_factory=list)  # emulator entries, `t` made relative
    storage_log: list[dict[str, Any]] = field(default_factory=list)  # the same, from the storage emulator
    counters_at_start: dict[str, float] = field(default_factory=dict)  # flattened /metrics before the load
    service_counters: dict[str, float] = field(default_factory=dict)  # flattened /metrics at the end
    timings: dict[str, float] = field(default_factory=dict)  # what the service says it runs with (/readyz)
    service_env: dict[str, str] = field(default_factory=dict)
    accepted_forgeries: list[str] = field(default_factory=list)  # forged tokens the service did not refuse
    cross_user_reads: list[str] = field(default_factory=list)  # another user's generations a user got to see
    unmeasurable: dict[str, str] = field(default_factory=dict)  # metric -> the evidence the contract cannot give
    upstream_metric: str | None = None  # the service's upstream-attempts counter, where the contract names one
    allowed_503_reasons: list[str] = field(default_factory=list)  # generic 503 reasons the scenario permits
    settle_s: float = 0.0
