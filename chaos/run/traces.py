"""The service's spans, from the OTLP/JSON lines file the stack gives it (one ExportTraceServiceRequest
per line): read by the report for its waterfalls, and by the runner to see whether the trace context
each request carried reached FAL, directly or through a span link (a queued job's usual shape).
"""

from __future__ import annotations

import json
import time
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


def joined_traces(path: str, offset: int, expected: dict[str, str], wait_s: float = EXPORT_WAIT_S) -> dict[str, list[str]]:
    """For each trace FAL saw (the keys of ``expected``, each with the request trace it should join), the
    traces it joins: itself and every trace its spans link to. A queued job's root span, which holds the
    link, is written only once the job ends, so this waits up to ``wait_s`` for every expected join."""
    deadline = time.monotonic() + wait_s
    while True:
        joins: dict[str, set[str]] = {trace: {trace} for trace in expected}
        for span in load_spans(Path(path), offset):
            if span.get("traceId") in joins:
                joins[span["traceId"]] |= {link.get("traceId") for link in span.get("links", []) if link.get("traceId")}
        if all(expected[trace] in linked for trace, linked in joins.items()) or time.monotonic() >= deadline:
            return {trace: sorted(linked) for trace, linked in joins.items()}
        time.sleep(0.25)
