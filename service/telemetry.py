"""OpenTelemetry tracing of the service: the request, the worker's pipeline, every retry and breaker move.

The request's server span comes from ``ServerSpans``, an ASGI middleware that makes just that span,
named and attributed as FastAPI's own telemetry (``FastAPI(telemetry=...)``) names it, for about half
of its CPU per request (FastAPI's also serves metrics, logs, operation spans and telemetry data that
the service does not use; the contrib ASGI middleware cost twice as much again). asyncpg and httpx
are traced by their contrib instrumentations.

Exporters: ``OTEL_TRACES_EXPORTER`` (comma-separated ``otlp``, ``console`` or ``none``; unset means
``otlp`` when an OTLP endpoint is configured, else none) plus, for embedded runs, an OTLP/JSON lines
file (``GENCHAOS_TRACES_FILE``). ``OTEL_SDK_DISABLED=true`` turns tracing off entirely, which is how
the overhead benchmark measures the uninstrumented service.
The client's ``traceparent`` joins the runner's and Locust's requests to the service's spans, and
the worker's trace links back to the request that created the generation through the traceparent
stored with the row.
"""

from __future__ import annotations

import os
from collections.abc import Callable, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI
from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.otlp_file import OtlpJsonLinesExporter
from service.redaction import RedactUrlAttributes
from service.settings import Settings

tracer = trace.get_tracer("genchaos.service")
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # polled many times a second; their spans would drown the rest
TRACES_EXPORTERS = ("otlp", "console", "none")
_W3C = TraceContextTextMapPropagator()  # stored traceparents are W3C whatever OTEL_PROPAGATORS says
FILE_EXPORT_DELAY_MS = 500  # a run's traces file is read right after the run; don't keep spans back for long


class TracingConfigError(ValueError):
    """The tracing environment asks for something the service cannot do; raised at start-up."""


def service_version() -> str:
    try:
        return version("genchaos")
    except PackageNotFoundError:
        return "0.0.0"


def tracing_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def span_exporters(settings: Settings) -> list[SpanExporter]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names, then the OTLP/JSON lines file when ``GENCHAOS_TRACES_FILE``
    names one (whatever ``OTEL_TRACES_EXPORTER`` says). A name the service has no exporter for is an error."""
    names = [name.strip().lower() for name in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    unknown = [name for name in names if name not in TRACES_EXPORTERS]
    if unknown:
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER: unknown exporter {', '.join(map(repr, unknown))}; "
                                 f"choose from {', '.join(TRACES_EXPORTERS)}")
    if "none" in names and len(names) > 1:
        raise TracingConfigError("OTEL_TRACES_EXPORTER: 'none' cannot be combined with other exporters")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not names and endpoint:
        names = ["otlp"]  # before OTEL_TRACES_EXPORTER was honoured, an endpoint alone turned OTLP on
    exporters: list[SpanExporter] = []
    if "otlp" in names:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        exporters.append(OTLPSpanExporter())  # reads its endpoint, headers and timeout from OTEL_EXPORTER_OTLP_*
    if "console" in names:
        exporters.append(ConsoleSpanExporter())
    if settings.traces_file:
        exporters.append(OtlpJsonLinesExporter(settings.traces_file))
    return exporters


FASTAPI_TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's own telemetry stays off: ServerSpans makes the request spans, Prometheus has the metrics."""


@dataclass(frozen=True)
class Tracing:
    """What the app needs from tracing: its request spans, and how to flush spans at shutdown."""

    tracer: trace.Tracer | None
    shutdown: Callable[[], None]

    def instrument(self, app: FastAPI) -> None:
        """Give every request but the untraced polls a server span; the outermost middleware of those
        added so far, so the span holds them."""
        if self.tracer is not None:
            app.add_middleware(ServerSpans, tracer=self.tracer)


UNTRACED = Tracing(None, lambda: None)


def untraced_request(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS


def setup_tracing(settings: Settings) -> Tracing:
    """Install the tracer provider and the asyncpg and httpx instrumentation, and the tracer that
    request spans come from.

    Raises TracingConfigError for an exporter choice the service cannot honour, even with tracing disabled."""
    exporters = span_exporters(settings)
    if tracing_disabled() or not exporters:
        return UNTRACED  # nowhere to send spans: leave the app uninstrumented
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "genchaos-service"),
                                "service.version": service_version(), "genchaos.profile": settings.profile})
    # OTEL_TRACES_SAMPLER (e.g. parentbased_traceidratio) wins; by default every trace is kept but
    # background polls that explain no request.
    sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else ParentBased(root=DropOrphanClientSpans())
    provider = TracerProvider(resource=resource, sampler=sampler)
    provider.add_span_processor(RedactUrlAttributes())
    for exporter in exporters:
        delay = FILE_EXPORT_DELAY_MS if isinstance(exporter, OtlpJsonLinesExporter) else None  # None: OTEL_BSP_*
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=delay))
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    return Tracing(provider.get_tracer("genchaos.http", service_version()), provider.shutdown)


HTTP_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"})
"""Methods the HTTP semantic conventions name; any other is recorded as ``_OTHER`` (and in a span named HTTP)."""


class ServerSpans:
    """ASGI middleware: a SERVER span per HTTP request, child of the client's trace context, named
    ``METHOD /route/template`` once the router has matched, with the HTTP semantic conventions'
    attributes. A 5xx answer, an exception or no answer at all marks it as an error."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or untraced_request(scope):
            await self.app(scope, receive, send)
            return
        parent = propagate.extract({name.decode("latin-1"): value.decode("latin-1")
                                    for name, value in scope["headers"]})
        original_method = scope["method"]
        method = original_method if original_method in HTTP_METHODS else "_OTHER"
        attributes = {"http.request.method": method, "url.scheme": scope.get("scheme", "http"),
                      "url.path": scope["path"], "network.protocol.version": scope.get("http_version", "1.1")}
        if method != original_method:
            attributes["http.request.method_original"] = original_method
        if scope.get("query_string"):
            attributes["url.query"] = scope["query_string"].decode("latin-1")  # RedactUrlAttributes redacts it
        if scope.get("server"):
            attributes["server.address"], attributes["server.port"] = scope["server"]
        name = "HTTP" if method == "_OTHER" else method
        span = self.tracer.start_span(name, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes)
        status: int | None = None

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = context.attach(trace.set_span_in_context(span, parent))
        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_observed)
        except BaseException as raised:
            error = raised
            raise
        finally:
            context.detach(token)
            route = getattr(scope.get("route"), "path", None)  # the router fills in scope["route"]
            if route is not None:
                span.update_name(f"{name} {route}")
                span.set_attribute("http.route", route)
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if error is not None or status is None or status >= 500:
                span.set_attribute("error.type", type(error).__qualname__ if error is not None
                                   else str(status or "incomplete_response"))
                span.set_status(trace.StatusCode.ERROR)
            span.end()


class DropOrphanClientSpans(Sampler):
    """Root sampler: a client span with no parent is a background poll (the worker's claim query, a
    health check) that explains no request; recording them would cost more than all the rest."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        decision = Decision.DROP if kind is trace.SpanKind.CLIENT else Decision.RECORD_AND_SAMPLE
        return SamplingResult(decision, attributes if decision is Decision.RECORD_AND_SAMPLE else None, trace_state)

    def get_description(self) -> str:
        return "DropOrphanClientSpans"


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to store with work that continues elsewhere (None outside a
    trace, as with tracing off). Written directly: the propagator API costs more than the rest of a request's
    tracing-off overhead."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def links_to(traceparent: str | None) -> list[trace.Link]:
    """A link to the span a stored traceparent names (none if there is none)."""
    if not traceparent:
        return []
    context = trace.get_current_span(_W3C.extract({"traceparent": traceparent})).get_span_context()
    return [trace.Link(context)] if context.is_valid else []


def untraced_queries() -> AbstractContextManager[None]:
    """Leaves the API's own database queries without client spans. They were one span in three of a POST's
    (its admission query), the report reads none of them, and the request's server span times them anyway;
    the worker's queries, whose spans its waterfalls show, keep theirs."""
    return suppress_instrumentation()


def add_event(name: str, **attributes) -> None:
    """An event on the current span (breaker moves, retries, rejections)."""
    trace.get_current_span().add_event(name, {k: v for k, v in attributes.items() if v is not None})
