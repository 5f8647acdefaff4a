"""Builders of synthetic observations for the judge's unit tests: requests as the runner records
them, fault windows as the timeline records them, and FAL request-log entries as the emulator
logs them."""

from __future__ import annotations

from typing import Any

from chaos.contract.model import default_contract
from chaos.run.observations import BreakerSample, FaultWindow, Observation, RequestRecord
from chaos.run.protocol import GenerationProtocol

FAL_APP = "/fal-ai/flux/dev"
REFERENCE = default_contract()
REFERENCE_API = GenerationProtocol(REFERENCE)
UPSTREAM_METRIC = REFERENCE.telemetry.metrics.upstream_attempts


def sentence(cause: str | None) -> str | None:
    """The reference contract's 503 sentence for a cause (the shared high-load one for the generic two)."""
    return REFERENCE.sentence(cause) if cause else None


def completed(t: float, generation_s: float = 0.4, generation_id: str | None = None) -> RequestRecord:
    """An accepted request whose generation completed ``generation_s`` after it was sent."""
    return RequestRecord(t=t, status=202, latency_s=0.01, trace_id=f"trace-{t}",
                         generation_id=generation_id or f"g{t}", final_status="completed",
                         terminal_t=t + generation_s)


def failed(t: float, generation_s: float = 0.4) -> RequestRecord:
    """An accepted request whose generation failed."""
    return RequestRecord(t=t, status=202, latency_s=0.01, trace_id=f"trace-{t}", generation_id=f"g{t}",
                         final_status="failed", terminal_t=t + generation_s, error="generation failed")


def refused(t: float, reason: str | None, detail: str | None = None, latency_s: float = 0.01) -> RequestRecord:
    """A 503 from the reference service with ``reason`` in its cause header and, unless given, that
    reason's own sentence; its causes read as the runner reads them (sentence and header must agree)."""
    record = RequestRecord(t=t, status=503, latency_s=latency_s, trace_id=f"trace-{t}", retry_after="1",
                           reason_503=reason, detail=detail if detail is not None else sentence(reason))
    record.causes = REFERENCE_API.causes(record)
    return record


def window(start: float, end: float, dependency: str, kind: str, *, proxy: str | None = None,
           attributes: dict[str, Any] | None = None, proxy_bytes: float | None = None,
           description: str | None = None) -> FaultWindow:
    return FaultWindow(start=start, end=end, description=description or f"{dependency} {kind}",
                       dependency=dependency, kind=kind, proxy=proxy, attributes=dict(attributes or {}),
                       proxy_bytes=proxy_bytes)


def observation(requests: list[RequestRecord] = (), *, windows: list[FaultWindow] = (),
                fal_log: list[dict[str, Any]] = (), samples: list[BreakerSample] = (),
                counters_at_start: dict[str, float] | None = None,
                service_counters: dict[str, float] | None = None,
                allowed_503_reasons: list[str] = (), settle_s: float = 0.0,
                upstream_metric: str | None = UPSTREAM_METRIC) -> Observation:
    """A run of the reference service, whose contract names its upstream-attempts counter."""
    return Observation(scenario="synthetic", profile="hardened", timing="fast", started_at=0.0, duration_s=20.0,
                       requests=list(requests), breaker_samples=list(samples), fault_windows=list(windows),
                       fal_log=list(fal_log), counters_at_start=dict(counters_at_start or {}),
                       service_counters=dict(service_counters or {}),
                       allowed_503_reasons=list(allowed_503_reasons), settle_s=settle_s,
                       upstream_metric=upstream_metric)


def breaker(timeline: list[tuple[float, str]]) -> list[BreakerSample]:
    """/readyz samples of the FAL breaker: (t, closed | open | half_open)."""
    return [BreakerSample(t, {"fal": state}) for t, state in timeline]


def submit(t: float, status: int, request_id: str | None, generation_id: str | None) -> dict[str, Any]:
    """A FAL queue submission as the emulator logs it (no request id when FAL refused it)."""
    return {"t": t, "method": "POST", "kind": "submit", "status": status, "request_id": request_id,
            "generation_id": generation_id, "path": FAL_APP}


def poll(t: float, request_id: str, status: int = 200) -> dict[str, Any]:
    return {"t": t, "method": "GET", "kind": "status", "status": status, "request_id": request_id,
            "path": f"{FAL_APP}/requests/{request_id}/status"}


def result(t: float, request_id: str, status: int = 200) -> dict[str, Any]:
    return {"t": t, "method": "GET", "kind": "result", "status": status, "request_id": request_id,
            "path": f"{FAL_APP}/requests/{request_id}"}


def cancel(t: float, request_id: str, status: int = 202) -> dict[str, Any]:
    return {"t": t, "method": "PUT", "kind": "cancel", "status": status, "request_id": request_id,
            "path": f"{FAL_APP}/requests/{request_id}/cancel"}


def upstream_key(dependency: str, operation: str, outcome: str) -> str:
    """A flattened /metrics key of the service's upstream attempts counter."""
    return f"{UPSTREAM_METRIC}{{dependency={dependency},operation={operation},outcome={outcome}}}"
