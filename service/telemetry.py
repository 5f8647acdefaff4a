"""OpenTelemetry tracing of the service: the request, the worker's pipeline, every retry and breaker move.

Exporters come from the standard ``OTEL_*`` variables (OTLP/HTTP when an endpoint is set) plus, for
embedded runs, an OTLP/JSON lines file (``GENCHAOS_TRACES_FILE``). ``OTEL_SDK_DISABLED=true`` turns
tracing off entirely, which is how the overhead benchmark measures the uninstrumented service.
The client's ``traceparent`` joins the runner's and Locust's requests to the service's spans, and
the worker's trace links back to the request that created the generation through the traceparent
stored with the row.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult

from service.otlp_file import OtlpJsonLinesExporter
from service.settings import Settings

tracer = trace.get_tracer("genchaos.service")
UNTRACED_ROUTES = "healthz,readyz,metrics"  # polled many times a second; their spans would drown the rest


def service_version() -> str:
    try:
        return version("genchaos")
    except PackageNotFoundError:
        return "0.0.0"


def tracing_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def setup_tracing(app: FastAPI, settings: Settings) -> Callable[[], None]:
    """Install the tracer provider and the FastAPI, asyncpg and httpx instrumentation; returns shutdown."""
    otlp_endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if tracing_disabled() or not (otlp_endpoint or settings.traces_file):
        return lambda: None  # nowhere to send spans: leave the app uninstrumented
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "genchaos-service"),
                                "service.version": service_version(), "genchaos.profile": settings.profile})
    # OTEL_TRACES_SAMPLER (e.g. parentbased_traceidratio) wins; by default every trace is kept but
    # background polls that explain no request.
    sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else ParentBased(root=DropOrphanClientSpans())
    provider = TracerProvider(resource=resource, sampler=sampler)
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if settings.traces_file:
        provider.add_span_processor(BatchSpanProcessor(OtlpJsonLinesExporter(settings.traces_file),
                                                       schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=UNTRACED_ROUTES,
                                       exclude_spans=["receive", "send"])  # per-ASGI-message spans: noise
    AsyncPGInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    return provider.shutdown


class DropOrphanClientSpans(Sampler):
    """Root sampler: a client span with no parent is a background poll (the worker's claim query, a
    health check) that explains no request; recording them would cost more than all the rest."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        decision = Decision.DROP if kind is trace.SpanKind.CLIENT else Decision.RECORD_AND_SAMPLE
        return SamplingResult(decision, attributes if decision is Decision.RECORD_AND_SAMPLE else None, trace_state)

    def get_description(self) -> str:
        return "DropOrphanClientSpans"


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to store with work that continues elsewhere."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def links_to(traceparent: str | None) -> list[trace.Link]:
    """A link to the span a stored traceparent names (none if there is none)."""
    if not traceparent:
        return []
    context = trace.get_current_span(propagate.extract({"traceparent": traceparent})).get_span_context()
    return [trace.Link(context)] if context.is_valid else []


def add_event(name: str, **attributes) -> None:
    """An event on the current span (breaker moves, retries, rejections)."""
    trace.get_current_span().add_event(name, {k: v for k, v in attributes.items() if v is not None})
