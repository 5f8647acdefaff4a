"""The direct OTLP/JSON encoder writes exactly what the SDK's protobuf encoding turned into JSON would:
the same spans through both must give equal documents, for every kind of value a span can carry."""

from __future__ import annotations

import base64
import math

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from service import otlp_file
from service.otlp_file import spans_to_otlp_json

ID_FIELDS = ("traceId", "spanId", "parentSpanId")
EVERY_VALUE = {"text": "lighthouse", "empty": "", "yes": True, "no": False, "zero": 0, "count": 3, "negative": -7,
               "largest": 2**63 - 1, "ratio": 0.25, "whole_float": 2.0, "nan": math.nan, "inf": math.inf,
               "minus_inf": -math.inf, "raw": b"\x00\xffpng", "names": ["a", "b"], "numbers": [1, 2],
               "flags": [True, False], "ratios": [0.5, 1.5], "none_of_them": []}


def reference_otlp_json(spans) -> dict:
    """The OTLP/JSON form the long way round: the SDK's protobuf request, protobuf's JSON mapping, ids to hex."""
    def hex_ids(node):
        if isinstance(node, dict):
            return {key: base64.b64decode(value).hex() if key in ID_FIELDS else hex_ids(value)
                    for key, value in node.items()}
        if isinstance(node, list):
            return [hex_ids(item) for item in node]
        return node
    return hex_ids(MessageToDict(encode_spans(spans), use_integers_for_enums=True))


def recorded_spans() -> list:
    """Spans covering every field the encoder writes: kinds, remote and local parents, trace state, events,
    links, error status, dropped attributes, two resources and scopes with and without version and schema."""
    exporter = InMemorySpanExporter()
    limits = SpanLimits(max_span_attributes=len(EVERY_VALUE) + 3)
    for resource in (Resource.create({"service.name": "genchaos-service", "genchaos.profile": "hardened"},
                                     schema_url="https://opentelemetry.io/schemas/1.21.0"),
                     Resource.get_empty()):
        provider = TracerProvider(resource=resource, span_limits=limits)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        request_tracer = provider.get_tracer("fastapi", "0.165.0",
                                             schema_url="https://opentelemetry.io/schemas/1.11.0")
        service_tracer = provider.get_tracer("genchaos.service")
        remote = SpanContext(0x5F51ED3DBFB98FCAFD20859DAF91D662, 0xDC4D9752136E6207, is_remote=True,
                             trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "abc"), ("other", "1")]))
        with request_tracer.start_as_current_span("POST /api/v1/generations", context=trace.set_span_in_context(
                trace.NonRecordingSpan(remote)), kind=SpanKind.SERVER, attributes=EVERY_VALUE) as server:
            server.set_attribute("over.the.limit.1", 1)
            server.set_attribute("over.the.limit.2", 2)
            server.set_attribute("over.the.limit.3", 3)
            server.set_attribute("over.the.limit.4", 4)
            server.add_event("breaker.rejected", {"dependency": "fal", "operation": "submit"})
            server.add_event("plain")
            with request_tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT,
                                                      attributes={"db.statement": "SELECT 1"}):
                pass
        with service_tracer.start_as_current_span(
                "generation.process", kind=SpanKind.CONSUMER,
                links=[Link(server.get_span_context(), {"genchaos.reason": "created by"}), Link(remote)]) as process:
            process.set_status(Status(StatusCode.ERROR, "FAL job failed"))
            with service_tracer.start_as_current_span("fal.attempt", attributes={"genchaos.attempt": 2}) as attempt:
                attempt.add_event("retry", {"sleep_s": 0.2, "attempt": 1, "error": "HTTPStatusError"})
                attempt.set_status(Status(StatusCode.OK))
            service_tracer.start_span("generation.claim", kind=SpanKind.PRODUCER).end()
        provider.shutdown()
    return list(exporter.get_finished_spans())


def test_the_direct_encoding_equals_the_sdk_protobuf_encoding():
    spans = recorded_spans()
    assert spans_to_otlp_json(spans) == reference_otlp_json(spans)


def test_the_direct_encoding_keeps_ids_in_hex_and_times_as_strings():
    spans = recorded_spans()
    encoded = next(span for span in spans_to_otlp_json(spans)["resourceSpans"][0]["scopeSpans"][0]["spans"]
                   if span["name"] == "POST /api/v1/generations")
    assert encoded["traceId"] == "5f51ed3dbfb98fcafd20859daf91d662"
    assert encoded["parentSpanId"] == "dc4d9752136e6207"
    assert isinstance(encoded["startTimeUnixNano"], str) and int(encoded["startTimeUnixNano"]) > 0
    assert {"key": "count", "value": {"intValue": "3"}} in encoded["attributes"]


@pytest.mark.parametrize("break_it", [
    lambda monkeypatch: monkeypatch.setattr(otlp_file, "_flags", lambda parent: 0x100),  # remote parents unmarked
    lambda monkeypatch: monkeypatch.setattr(otlp_file, "_NON_FINITE", {"nan": "nan", "inf": "inf", "-inf": "-inf"}),
    lambda monkeypatch: monkeypatch.setitem(otlp_file._KIND, SpanKind.PRODUCER, 1),
])
def test_a_diverging_encoder_is_caught(monkeypatch, break_it):
    spans = recorded_spans()
    break_it(monkeypatch)
    assert spans_to_otlp_json(spans) != reference_otlp_json(spans)


def test_values_otlp_cannot_hold_are_dropped_like_the_sdk_drops_them():
    spans = recorded_spans()
    spans[0]._attributes = {**spans[0].attributes, "too_big": 2**64, "kept": "yes"}
    assert spans_to_otlp_json(spans) == reference_otlp_json(spans)
