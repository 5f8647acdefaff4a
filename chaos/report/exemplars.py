"""Exemplar traces for the report: per scenario, one request turned away fast by an open breaker and one
generation whose worker needed more than one FAL attempt, found in the service's OTLP/JSON traces file
(one ExportTraceServiceRequest per line) from the candidates the runner recorded."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from chaos.run.traces import attributes, load_spans

MAX_SPANS = 60  # rows in one waterfall; a long trace is cut, and says so
# The contrib ASGI instrumentation's per-message spans (a service traced with it rather than with
# FastAPI's own telemetry): noise next to the request span that holds them.
NOISE_SUFFIXES = (" http send", " http receive")
# Status codes under the current HTTP conventions (FastAPI) and the old ones (httpx's client spans).
STATUS_ATTRIBUTES = ("http.response.status_code", "http.status_code")
SHOWN_ATTRIBUTES = (*STATUS_ATTRIBUTES, "genchaos.503_reason", "genchaos.dependency", "genchaos.attempt",
                    "genchaos.outcome", "genchaos.generation_id", "genchaos.attempts", "db.statement")
ERROR_STATUS = 2  # OTLP Status.code ERROR


def waterfall(trace: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a waterfall: spans in tree order (children by start time), each with its depth,
    start and duration in ms from the trace's first span, outcome, shown attributes and events."""
    spans = [s for s in trace if not s["name"].endswith(NOISE_SUFFIXES)]
    if not spans:
        return []
    ids = {s["spanId"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for span in spans:
        parent = span.get("parentSpanId")
        children[parent if parent in ids else None].append(span)
    origin = min(int(s["startTimeUnixNano"]) for s in spans)

    def ms(nanos: str | int) -> float:
        return (int(nanos) - origin) / 1e6

    rows: list[dict[str, Any]] = []

    def visit(span: dict[str, Any], depth: int) -> None:
        attrs = attributes(span)
        rows.append({
            "name": span["name"], "depth": depth, "start_ms": ms(span["startTimeUnixNano"]),
            "duration_ms": ms(span["endTimeUnixNano"]) - ms(span["startTimeUnixNano"]),
            "error": span.get("status", {}).get("code") == ERROR_STATUS or attrs.get("genchaos.outcome") in (
                "error", "timeout", "rejected") or any(int(attrs.get(k) or 0) >= 500 for k in STATUS_ATTRIBUTES),
            "attributes": {k: attrs[k] for k in SHOWN_ATTRIBUTES if k in attrs},
            "events": [{"name": e["name"], "t_ms": ms(e["timeUnixNano"]), "attributes": attributes(e)}
                       for e in span.get("events", [])],
        })
        for child in sorted(children.get(span["spanId"], []), key=lambda s: int(s["startTimeUnixNano"])):
            visit(child, depth + 1)

    for root in sorted(children[None], key=lambda s: int(s["startTimeUnixNano"])):
        visit(root, 0)
    return rows


class TraceIndex:
    """The spans of a traces file by trace id, and worker traces by generation id."""

    def __init__(self, spans: list[dict[str, Any]]) -> None:
        self.traces: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.worker_trace_of: dict[str, str] = {}
        for span in spans:
            self.traces[span["traceId"]].append(span)
            if span["name"] == "generation.process":
                generation_id = attributes(span).get("genchaos.generation_id")
                if generation_id:
                    self.worker_trace_of[str(generation_id)] = span["traceId"]

    def duration_ns(self, trace_id: str) -> int:
        spans = self.traces.get(trace_id, [])
        return (max(int(s["endTimeUnixNano"]) for s in spans) - min(int(s["startTimeUnixNano"]) for s in spans)
                if spans else 0)

    def fal_attempts(self, trace_id: str) -> int:
        """The highest genchaos.attempt among a trace's fal.attempt spans (0 when there is none)."""
        return max((int(attributes(s).get("genchaos.attempt") or 0)
                    for s in self.traces.get(trace_id, []) if s["name"] == "fal.attempt"), default=0)


def _exemplar(kind: str, title: str, trace_id: str, index: TraceIndex, linked: str | None = None) -> dict[str, Any]:
    rows = waterfall(index.traces[trace_id])
    return {"kind": kind, "title": title, "trace_id": trace_id, "linked_trace_id": linked,
            "truncated": len(rows) > MAX_SPANS, "spans": rows[:MAX_SPANS]}


def scenario_exemplars(candidates: dict[str, Any], index: TraceIndex) -> list[dict[str, Any]]:
    """Up to two exemplars of one scenario from the candidates the runner recorded."""
    found = []
    fast = min((t for t in candidates.get("breaker_open", []) if index.traces.get(t)), key=index.duration_ns,
               default=None)
    if fast:
        found.append(_exemplar("breaker_open", "Request failed fast on an open breaker (503 breaker_open)",
                               fast, index))
    retried = [(index.fal_attempts(index.worker_trace_of[g]), g, request_trace)
               for g, request_trace in candidates.get("generations", {}).items() if g in index.worker_trace_of]
    retried = [r for r in retried if r[0] >= 2]
    if retried:
        attempts, generation_id, request_trace = max(retried, key=lambda r: r[0])
        found.append(_exemplar("retried_generation", f"Generation {generation_id} needed {attempts} FAL attempts",
                               index.worker_trace_of[generation_id], index, linked=request_trace))
    return found


def add_exemplars(report: dict[str, Any], traces_path: Path) -> None:
    """Give each scenario of ``report`` an ``exemplars`` list (empty when no trace qualified)."""
    index = TraceIndex(load_spans(traces_path))
    for scenario in report["scenarios"]:
        candidates = (scenario.get("metrics") or {}).get("exemplar_candidates") or {}
        scenario["exemplars"] = scenario_exemplars(candidates, index)
