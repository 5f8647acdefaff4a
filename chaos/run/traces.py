"""The service's spans, from the OTLP/JSON lines file the stack gives it (one ExportTraceServiceRequest
per line): read by the report for its waterfalls, and by the runner to see whether the trace context
each request carried reached FAL, directly or through a span link (a queued job's usual shape), and
whether each refused request's spans name the cause of its 503.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXPORT_WAIT_S = 3.0  # the service batches spans for up to about half a second before writing them


def attribute_value(value: dict[str, Any]) -> Any:
    """The plain value of an OTLP/JSON AnyValue ({"stringValue": ...}, {"intValue": "3"}, ...)."""
    for kind, plain in value.items():
        if kind == "intValue":
            return int(plain)
        if kind in ("stringValue", "boolValue", "doubleValue"):
            return plain
    return None


def attributes(item: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: attribute_value(a.get("value", {})) for a in item.get("attributes", [])}


def load_spans(path: Path, offset: int = 0) -> list[dict[str, Any]]:
    """Every span of an OTLP/JSON lines file from byte ``offset``; unreadable lines (a write cut short)
    are skipped."""
    if not path.is_file():
        return []
    with path.open("rb") as file:
        file.seek(offset)
        text = file.read().decode(errors="replace")
    spans = []
    for line in text.splitlines():
        try:
            request = json.loads(line)
            for resource in request.get("resourceSpans", []):
                for scope in resource.get("scopeSpans", []):
                    spans.extend(scope.get("spans", []))
        except (ValueError, AttributeError, TypeError):
            continue
    return spans


def file_size(path: str | None) -> int:
    """Where a scenario's spans start in the traces file (it is appended to across a suite)."""
    return Path(path).stat().st_size if path and Path(path).is_file() else 0


def trace_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C traceparent; None for none or a malformed one."""
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


@dataclass
class RunTraces:
    """What the service's spans of one run show: the traces each trace FAL saw joins (itself and those its
    spans link to), and the causes the spans of each refused request's trace name."""

    joins: dict[str, list[str]]
    causes: dict[str, list[str]]


def read_run_traces(path: str, offset: int, expected: dict[str, str], refused: set[str],
                    cause_attribute: str | None, wait_s: float = EXPORT_WAIT_S) -> RunTraces:
    """``expected`` maps each trace FAL saw to the request trace it should join; ``refused`` are the traces
    of requests answered 503, whose spans should name the cause in ``cause_attribute``. A queued job's root
    span, which holds the link, is written only once the job ends, so this waits up to ``wait_s`` until
    every expected join and cause is there."""
    deadline = time.monotonic() + wait_s
    while True:
        joins: dict[str, set[str]] = {trace: {trace} for trace in expected}
        causes: dict[str, set[str]] = {trace: set() for trace in refused}
        for span in load_spans(Path(path), offset):
            trace = span.get("traceId")
            if trace in joins:
                joins[trace] |= {link.get("traceId") for link in span.get("links", []) if link.get("traceId")}
            if trace in causes and cause_attribute:
                value = attributes(span).get(cause_attribute)
                if value is not None:
                    causes[trace].add(str(value))
        complete = all(expected[trace] in linked for trace, linked in joins.items()) and (
            cause_attribute is None or all(causes.values()))
        if complete or time.monotonic() >= deadline:
            return RunTraces({trace: sorted(linked) for trace, linked in joins.items()},
                             {trace: sorted(named) for trace, named in causes.items()})
        time.sleep(0.25)
