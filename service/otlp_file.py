"""A span exporter that appends OTLP/JSON lines to a file.

Each line is one ExportTraceServiceRequest in the OTLP/JSON encoding (hex trace and span ids,
integer enums, lowerCamelCase names, int64 values as strings), so a run's ``traces.jsonl`` loads
in Jaeger's file upload or any OTLP JSON reader without a collector.

The spans are encoded straight to that JSON form and serialised with orjson. Going through the
SDK's protobuf encoder and protobuf's ``MessageToDict`` gives the same result (tests/unit/
test_otlp_json_encoding.py holds the two equal) but cost more CPU than the rest of tracing put
together; the standard library's json.dumps alone cost as much as building the spans' dicts.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind

log = logging.getLogger(__name__)

_KIND = {SpanKind.INTERNAL: 1, SpanKind.SERVER: 2, SpanKind.CLIENT: 3, SpanKind.PRODUCER: 4, SpanKind.CONSUMER: 5}
_FLAGS_HAS_IS_REMOTE, _FLAGS_IS_REMOTE = 0x100, 0x200  # OTLP SpanFlags
_INT64 = range(-(2**63), 2**63)
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # protobuf's JSON names


def _any_value(value: Any) -> dict[str, Any]:
    """An OTLP AnyValue; raises ValueError for what OTLP cannot hold (the SDK drops such attributes too)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, int):
        if value not in _INT64:
            raise ValueError(f"{value} does not fit in int64")
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value if math.isfinite(value) else _NON_FINITE[str(value)]}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, Sequence):
        values = [_any_value(item) for item in value]
        return {"arrayValue": {"values": values} if values else {}}
    if isinstance(value, Mapping):
        pairs = [{"key": str(k), "value": _any_value(v)} for k, v in value.items()]
        return {"kvlistValue": {"values": pairs} if pairs else {}}
    raise ValueError(f"invalid attribute type {type(value).__name__}")


def _attributes(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    encoded = []
    for key, value in (attributes or {}).items():
        if type(value) is str:  # most attributes: skip the type dispatch
            encoded.append({"key": key, "value": {"stringValue": value}})
            continue
        try:
            encoded.append({"key": key, "value": _any_value(value)})
        except ValueError as error:
            log.warning("dropped span attribute %s: %s", key, error)
    return encoded


def _with_attributes(node: dict[str, Any], attributes: Mapping[str, Any] | None, dropped: int = 0) -> dict[str, Any]:
    """``node`` plus its attributes and dropped count, each only when there is one (OTLP/JSON omits defaults)."""
    if encoded := _attributes(attributes):
        node["attributes"] = encoded
    if dropped:
        node["droppedAttributesCount"] = dropped
    return node


def _flags(parent: SpanContext | None) -> int:
    return _FLAGS_HAS_IS_REMOTE | (_FLAGS_IS_REMOTE if parent is not None and parent.is_remote else 0)


def _span(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    node: dict[str, Any] = {"traceId": f"{context.trace_id:032x}", "spanId": f"{context.span_id:016x}"}
    if context.trace_state:
        node["traceState"] = ",".join(f"{key}={value}" for key, value in context.trace_state.items())
    if span.parent is not None:
        node["parentSpanId"] = f"{span.parent.span_id:016x}"
    if span.name:
        node["name"] = span.name
    node["kind"] = _KIND[span.kind]
    if span.start_time:
        node["startTimeUnixNano"] = str(span.start_time)
    if span.end_time:
        node["endTimeUnixNano"] = str(span.end_time)
    _with_attributes(node, span.attributes, span.dropped_attributes)
    events, links = span.events, span.links  # each read copies them under a lock
    if events:
        node["events"] = [_with_attributes({"timeUnixNano": str(event.timestamp), "name": event.name},
                                           event.attributes, event.dropped_attributes) for event in events]
    if span.dropped_events:
        node["droppedEventsCount"] = span.dropped_events
    if links:
        node["links"] = [_with_attributes({"traceId": f"{link.context.trace_id:032x}",
                                           "spanId": f"{link.context.span_id:016x}"},
                                          link.attributes, link.dropped_attributes) | {"flags": _flags(link.context)}
                         for link in links]
    if span.dropped_links:
        node["droppedLinksCount"] = span.dropped_links
    status: dict[str, Any] = {}
    if span.status.status_code.value:
        status["code"] = span.status.status_code.value
    if span.status.description:
        status["message"] = span.status.description
    node["status"] = status
    node["flags"] = _flags(span.parent)
    return node


def _scope(scope: InstrumentationScope | None) -> dict[str, Any]:
    if scope is None:
        return {}
    node = {key: value for key, value in (("name", scope.name), ("version", scope.version)) if value}
    return _with_attributes(node, scope.attributes)


def spans_to_otlp_json(spans: Sequence[ReadableSpan]) -> dict:
    """The OTLP/JSON form of one export request holding ``spans``, grouped by resource, then scope."""
    grouped: dict[Resource, dict[InstrumentationScope | None, list[dict]]] = {}
    seen: dict[int, dict[InstrumentationScope | None, list[dict]]] = {}  # a Resource hashes by dumping its JSON
    for span in spans:
        scopes = seen.get(id(span.resource))
        if scopes is None:
            scopes = seen[id(span.resource)] = grouped.setdefault(span.resource, {})
        scopes.setdefault(span.instrumentation_scope or None, []).append(_span(span))
    resource_spans = []
    for resource, scopes in grouped.items():
        scope_spans = []
        for scope, encoded in scopes.items():
            entry = {"scope": _scope(scope), "spans": encoded}
            if scope is not None and scope.schema_url:
                entry["schemaUrl"] = scope.schema_url
            scope_spans.append(entry)
        entry = {"resource": _with_attributes({}, resource.attributes), "scopeSpans": scope_spans}
        if resource.schema_url:
            entry["schemaUrl"] = resource.schema_url
        resource_spans.append(entry)
    return {"resourceSpans": resource_spans}


def _json_line(document: dict) -> bytes:
    """One line of JSON. orjson refuses strings that are not valid UTF-8 (a lone surrogate, say, in an
    exception message); the standard library escapes them instead, so such a batch is still written."""
    try:
        return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        return json.dumps(document, separators=(",", ":")).encode("ascii") + b"\n"


class OtlpJsonLinesExporter(SpanExporter):
    """Appends one OTLP/JSON export request per batch to ``path``, a whole line at a time."""

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._out: BinaryIO | None = None  # opened at the first batch, kept open: opening it cost more than encoding

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        line = _json_line(spans_to_otlp_json(spans))
        with self._lock:
            try:
                if self._out is None:
                    self._out = self._path.open("ab")
                self._out.write(line)
                self._out.flush()  # readers (the report, tests) look at the file while the service runs
            except OSError:
                self._close()
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._out is not None:
            try:
                self._out.close()
            except OSError:
                pass  # the failed write already said so; a later batch opens the file anew
            self._out = None
