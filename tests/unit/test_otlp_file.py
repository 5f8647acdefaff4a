"""The OTLP/JSON lines file is real OTLP JSON: hex ids, parent links, attributes, one request per line."""

from __future__ import annotations

import json

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from service.otlp_file import OtlpJsonLinesExporter


def test_spans_are_written_as_otlp_json_lines(tmp_path):
    path = tmp_path / "traces.jsonl"
    provider = TracerProvider(resource=Resource.create({"service.name": "genchaos-service"}))
    provider.add_span_processor(SimpleSpanProcessor(OtlpJsonLinesExporter(path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("generation") as parent:
        with tracer.start_as_current_span("fal.attempt", attributes={"genchaos.attempt": 2}):
            pass
    provider.shutdown()

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    spans = [span for line in lines for rs in line["resourceSpans"] for ss in rs["scopeSpans"] for span in ss["spans"]]
    by_name = {span["name"]: span for span in spans}
    trace_id = format(parent.get_span_context().trace_id, "032x")
    assert by_name["generation"]["traceId"] == trace_id
    assert by_name["fal.attempt"]["parentSpanId"] == by_name["generation"]["spanId"]
    assert len(by_name["generation"]["spanId"]) == 16
    assert {"key": "genchaos.attempt", "value": {"intValue": "2"}} in by_name["fal.attempt"]["attributes"]
    resource_attributes = lines[0]["resourceSpans"][0]["resource"]["attributes"]
    assert {"key": "service.name", "value": {"stringValue": "genchaos-service"}} in resource_attributes
    assert isinstance(by_name["generation"]["kind"], int)


def test_orphan_client_spans_are_dropped_but_client_spans_inside_a_trace_are_kept(tmp_path):
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import ParentBased

    from service.telemetry import DropOrphanClientSpans

    path = tmp_path / "traces.jsonl"
    provider = TracerProvider(sampler=ParentBased(root=DropOrphanClientSpans()))
    provider.add_span_processor(SimpleSpanProcessor(OtlpJsonLinesExporter(path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("claim poll", kind=trace.SpanKind.CLIENT):
        pass
    with tracer.start_as_current_span("generation.process"):
        with tracer.start_as_current_span("SELECT", kind=trace.SpanKind.CLIENT):
            pass
    provider.shutdown()
    names = [s["name"] for line in path.read_text().splitlines()
             for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert sorted(names) == ["SELECT", "generation.process"]


def test_a_batch_holding_a_lone_surrogate_is_still_written(tmp_path):
    path = tmp_path / "traces.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OtlpJsonLinesExporter(path)))
    provider.get_tracer("test").start_span("exception", attributes={"exception.message": "bad \ud800 text"}).end()
    provider.get_tracer("test").start_span("after").end()
    provider.shutdown()

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    names = [span["name"] for line in lines for rs in line["resourceSpans"] for ss in rs["scopeSpans"]
             for span in ss["spans"]]
    assert names == ["exception", "after"]
    assert lines[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"][0]["value"] == \
        {"stringValue": "bad \ud800 text"}
