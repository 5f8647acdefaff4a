"""The scenario format: what one YAML file under chaos/scenarios/ may say.

Like a Chaos Toolkit experiment, a scenario has a steady state checked before, during and after
a fault, a method (the load plus the fault timeline) and a rollback that always runs (the runner
removes every fault). Like k6 thresholds, expectations are metric bounds; unlike them, a check
can be scoped to one phase of the run or must hold in every sliding window of a given length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from chaos.contract.names import canonical_profile, canonical_timing
from chaos.judge.registry import CLAIM_KEYS, GENERIC_REASONS, METRICS, RATE_METRICS, RUN_METRICS
from chaos.judge.stats import smallest_deciding_sample
from chaos.stack.embedded import PROFILES, TIMINGS
from chaos.stack.faults import PROXY_NAMES
from chaos.toxiproxy.toxics import TOXIC_TYPES


def _canonical(rename: Callable[[str], str]) -> Callable[[Any], Any]:
    """A validator step reading an alias as its current name; anything else is left to the Literal check."""
    return lambda value: rename(value) if isinstance(value, str) else value


# Each name set is owned elsewhere: profiles and timings by the service's settings (older aliases
# accepted, read as their current names), proxies by fault control, toxic types by the
# Toxiproxy-compatible server, claim keys and metrics by the judge.
Profile = Annotated[Literal[PROFILES], BeforeValidator(_canonical(canonical_profile))]  # type: ignore[valid-type]
Timing = Annotated[Literal[TIMINGS], BeforeValidator(_canonical(canonical_timing))]  # type: ignore[valid-type]
ProxyName = Literal[PROXY_NAMES]  # type: ignore[valid-type]
Phase = Literal["all", "before", "during", "after", "outside"]
ClaimKey = Literal[CLAIM_KEYS]  # type: ignore[valid-type]
GenericReason = Literal[GENERIC_REASONS]  # type: ignore[valid-type]
ToxicType = Literal[tuple(TOXIC_TYPES)]  # type: ignore[valid-type]
PROXY_DEPENDENCY = {"fal": "fal", "postgres": "database", "storage": "storage"}
MIN_PHASE_REQUESTS = 5  # a phase check judged on fewer requests is inconclusive
LATENCY_ALLOWANCE_S = 1.0  # a request counts as "before" only if its generation also ended before the fault


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Load(_Strict):
    """Open-model arrival rate or closed-model concurrent clients, for ``duration_s`` seconds."""

    rate_per_s: float | None = Field(None, gt=0, le=200)
    clients: int | None = Field(None, gt=0, le=200)
    duration_s: float = Field(gt=0, le=600)
    users: int = Field(5, gt=0, le=1000, description="distinct user tokens the requests rotate through")
    drain_s: float = Field(10, ge=0, le=600, description="how long after the load ends accepted generations "
                                                           "may take to reach a terminal state")
    think_s: float = Field(0.2, ge=0, description="closed model: pause between a client's requests")
    flood_rate_per_s: float | None = Field(None, gt=0, le=200, description="one more user floods at this rate "
                                           "for the whole load; its requests are judged apart (flood_* metrics)")
    model_id: str | None = Field(None, description="the model to ask for (default: the contract's)")

    @model_validator(mode="after")
    def _one_shape(self) -> Load:
        if (self.rate_per_s is None) == (self.clients is None):
            raise ValueError("give exactly one of rate_per_s (arrival rate) or clients (concurrent clients)")
        return self


class Toxic(_Strict):
    """A Toxiproxy toxic on one of the three proxies."""

    proxy: ProxyName
    type: ToxicType
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)
    attributes: dict[str, int] = Field(default_factory=dict)


class FalBehaviour(_Strict):
    """FAL emulator behaviour fields (docs/architecture.md); omitted fields keep their value."""

    queue_time_s: float | None = Field(None, ge=0)
    processing_time_s: float | None = Field(None, ge=0)
    latency_s: float | None = Field(None, ge=0)
    submit_error_rate: float | None = Field(None, ge=0, le=1)
    submit_error_status: int | None = Field(None, ge=400, le=599)
    submit_error_spacing: Literal["random", "even"] | None = None
    rate_limit_rate: float | None = Field(None, ge=0, le=1)
    ingress_error_rate: float | None = Field(None, ge=0, le=1)
    ingress_error_status: Literal[502, 503, 504] | None = None
    stuck_rate: float | None = Field(None, ge=0, le=1)
    job_failure_rate: float | None = Field(None, ge=0, le=1)
    key_revoked: bool | None = None

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class Fault(_Strict):
    """One entry of the fault timeline: exactly one of a toxic, a proxy taken down, or a FAL behaviour."""

    at_s: float = Field(alias="at", ge=0)
    for_s: float = Field(alias="for", gt=0)
    toxic: Toxic | None = None
    down: ProxyName | None = None
    fal: FalBehaviour | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Fault:
        kinds = [k for k in ("toxic", "down", "fal") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a fault needs exactly one of toxic, down or fal (got {', '.join(kinds) or 'none'})")
        if self.fal is not None and not self.fal.fields():
            raise ValueError("a fal fault must set at least one behaviour field")
        return self

    @property
    def end_s(self) -> float:
        return self.at_s + self.for_s

    @property
    def dependency(self) -> str:
        """What this fault breaks: fal, database or storage (the ground truth 503s are judged against)."""
        proxy = self.toxic.proxy if self.toxic is not None else self.down
        return PROXY_DEPENDENCY[proxy] if proxy is not None else "fal"

    @property
    def proxy(self) -> str | None:
        return self.toxic.proxy if self.toxic is not None else self.down

    @property
    def kind(self) -> str:
        if self.toxic is not None:
            return self.toxic.type
        return "down" if self.down is not None else "+".join(self.fal.fields())

    @property
    def attributes(self) -> dict[str, Any]:
        if self.toxic is not None:
            return dict(self.toxic.attributes)
        return {} if self.fal is None else self.fal.fields()

    def describe(self) -> str:
        if self.toxic is not None:
            t = self.toxic
            attrs = ",".join(f"{k}={v}" for k, v in t.attributes.items())
            return f"{t.type}({attrs}) on {t.proxy}/{t.stream} toxicity {t.toxicity:g}"
        if self.down is not None:
            return f"{self.down} proxy down"
        return "FAL " + ", ".join(f"{k}={v}" for k, v in self.fal.fields().items())


class Check(_Strict):
    """An expectation: a metric bounded by ``min`` and/or ``max`` (or ``equals``), in a phase or window."""

    metric: str
    phase: Phase = "all"
    settle_s: float = Field(0, ge=0, description="ignore requests sent this long after a fault ends "
                                                   "(phases after/outside), to allow recovery")
    window_s: float | None = Field(None, gt=0, description="the bound must hold in every sliding window "
                                                            "of this length within the phase")
    min_requests: int = Field(MIN_PHASE_REQUESTS, ge=1, description="a phase with fewer requests is inconclusive; "
                                                                     "windows with fewer are skipped")
    min: float | None = None
    max: float | None = None
    equals: float | bool | None = None
    profiles: list[Profile] | None = Field(None, description="only judge these profiles (default: all)")
    name: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Check:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(sorted(METRICS))}")
        if self.metric in RUN_METRICS and (self.phase != "all" or self.window_s is not None):
            raise ValueError(f"metric {self.metric!r} describes the whole run: use phase 'all' and no window_s")
        if self.equals is not None and (self.min is not None or self.max is not None):
            raise ValueError("use either equals or min/max, not both")
        if self.equals is None and self.min is None and self.max is None:
            raise ValueError("a check needs min, max or equals")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        scope = "" if self.phase == "all" else f"[{self.phase}]"
        window = f"[every {self.window_s:g}s]" if self.window_s else ""
        return f"{self.metric}{scope}{window}"

    @property
    def expected(self) -> str:
        if self.equals is not None:
            return f"== {self.equals}"
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return " and ".join(parts)

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """(lowest, highest) accepted value; ``equals`` is both."""
        if self.equals is not None:
            return float(self.equals), float(self.equals)
        return self.min, self.max

    def holds(self, observed: float | bool | None) -> bool:
        """Whether an observed value satisfies the bound; an unmeasured value (None) never does."""
        if observed is None:
            return False
        if self.equals is not None:
            return observed == self.equals
        return (self.min is None or observed >= self.min) and (self.max is None or observed <= self.max)


class Scenario(_Strict):
    """One chaos scenario: profiles and timing preset, load, fault timeline, expectations."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str
    suites: list[str] = Field(default_factory=list, description="suites besides 'full', which has everything")
    profiles: list[Profile] = Field(default_factory=lambda: list(PROFILES), min_length=1)
    timing: Timing = "fast"
    service_env: dict[str, str] = Field(default_factory=dict, description="GENCHAOS_* overrides for the service")
    load: Load
    faults: list[Fault] = Field(default_factory=list)
    checks: list[Check] = Field(min_length=1)
    settle_s: float = Field(3.0, ge=0, description="after a fault ends, how long until steady state is expected "
                                                     "again (the claims' 'outside fault windows')")
    evidence: list[ClaimKey] = Field(default_factory=list, description="report claims this scenario exercises, "
                                                                        "besides those every scenario informs")
    steady_state: bool = Field(True, description="its requests outside fault windows count towards the "
                                                  "steady-state claim; false for a scenario that overloads the "
                                                  "service on purpose")
    allowed_503_reasons: list[GenericReason] = Field(
        default_factory=list, description="generic 503 reasons (breaker_open, overloaded) that count as naming "
                                          "what the faults broke; a dependency's own reason always does")

    @model_validator(mode="after")
    def _faults_within_load(self) -> Scenario:
        for fault in self.faults:
            if fault.at_s >= self.load.duration_s:
                raise ValueError(f"fault '{fault.describe()}' starts at {fault.at_s:g}s, "
                                 f"after the load ends ({self.load.duration_s:g}s)")
        for key in self.service_env:
            if not key.startswith("GENCHAOS_"):
                raise ValueError(f"service_env key {key!r} must be a GENCHAOS_* setting")
        for index, check in enumerate(self.checks):
            expected = self.expected_requests(check.phase)
            if check.metric not in RUN_METRICS and expected is not None and expected < check.min_requests:
                raise ValueError(f"checks.{index} ({check.label}): the load sends about {expected:.0f} requests "
                                 f"in phase {check.phase!r}, fewer than its min_requests {check.min_requests}; "
                                 "lengthen the phase or raise the load")
            needed = smallest_deciding_sample(*check.bounds) if check.metric in RATE_METRICS else None
            if expected is not None and needed is not None and expected < needed:
                raise ValueError(f"checks.{index} ({check.label}): the load sends about {expected:.0f} requests "
                                 f"in phase {check.phase!r}, but its bound can hold only on {needed} or more, even "
                                 "when every one goes well; lengthen the phase, raise the load or loosen the bound")
        return self

    def expected_requests(self, phase: str) -> float | None:
        """About how many requests the load sends in a phase (None when it cannot be estimated)."""
        if self.load.rate_per_s is not None:
            per_s = self.load.rate_per_s
        else:
            per_s = (self.load.clients or 0) / (self.load.think_s + LATENCY_ALLOWANCE_S)
        windows = self.fault_windows()
        duration = self.load.duration_s
        if not windows:
            return per_s * duration if phase in ("all", "before", "outside") else 0.0
        first, last = windows[0][0], max(end for _, end in windows)
        settle = max((c.settle_s for c in self.checks if c.phase == phase), default=0.0)
        seconds = {
            "all": duration,
            "before": first - LATENCY_ALLOWANCE_S,
            "during": sum(end - start for start, end in windows),
            "after": duration - last - settle,
            "outside": duration - sum(end - start + self.settle_s for start, end in windows),
        }[phase]
        return per_s * max(0.0, seconds)

    def checks_for(self, profile: str) -> list[Check]:
        return [c for c in self.checks if c.profiles is None or profile in c.profiles]

    def fault_windows(self) -> list[tuple[float, float]]:
        return sorted((f.at_s, f.end_s) for f in self.faults)
