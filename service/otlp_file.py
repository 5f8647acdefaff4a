"""A span exporter that appends OTLP/JSON lines to a file.

Each line is one ExportTraceServiceRequest in the OTLP/JSON encoding (hex trace and span ids,
integer enums, lowerCamelCase names), so a run's ``traces.jsonl`` loads in Jaeger's file
upload or any OTLP JSON reader without a collector.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Sequence
from pathlib import Path

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node):
    """protobuf's JSON mapping writes bytes as base64; OTLP/JSON wants trace and span ids in hex."""
    if isinstance(node, dict):
        return {key: (base64.b64decode(value).hex() if key in _ID_FIELDS and isinstance(value, str) else _hex_ids(value))
                for key, value in node.items()}
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


def spans_to_otlp_json(spans: Sequence[ReadableSpan]) -> dict:
    """The OTLP/JSON form of one export request holding ``spans``."""
    return _hex_ids(MessageToDict(encode_spans(spans), use_integers_for_enums=True))


class OtlpJsonLinesExporter(SpanExporter):
    """Appends one OTLP/JSON export request per batch to ``path``."""

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        line = json.dumps(spans_to_otlp_json(spans), separators=(",", ":"))
        try:
            with self._lock, self._path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release: the file is opened per batch."""
