"""The traceparent stored with a generation names the request's span, so the worker's trace links back to it."""

from __future__ import annotations

from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider

from service.telemetry import current_traceparent, links_to


def test_the_stored_traceparent_is_what_the_w3c_propagator_sends_and_links_back_to_the_span():
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("POST /api/v1/generations") as span:
        stored = current_traceparent()
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    assert stored == carrier["traceparent"]
    [link] = links_to(stored)
    assert (link.context.trace_id, link.context.span_id) == (span.get_span_context().trace_id,
                                                             span.get_span_context().span_id)


def test_outside_a_trace_nothing_is_stored_and_nothing_linked():
    assert current_traceparent() is None
    assert links_to(None) == []
    assert links_to("00-00000000000000000000000000000000-0000000000000000-01") == []
