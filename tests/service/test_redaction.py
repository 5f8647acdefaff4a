"""Credentials in URLs never reach the service's log lines or its spans' URL attributes."""

from __future__ import annotations

import io
import json
import logging

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service.logs import JsonFormatter
from service.redaction import RedactUrlAttributes, redact

TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


def test_secret_query_values_and_userinfo_are_redacted_and_nothing_else():
    line = (f'"GET /api/v1/generations?limit=2&access_token={TOKEN}&token=t1;apikey=a2&KEY=k3 HTTP/1.1" '
            "https://alice:hunter2@example.com/x?monkey=1&keyboard=2")
    redacted = redact(line)
    for secret in (TOKEN, "t1", "a2", "k3", "alice", "hunter2"):
        assert secret not in redacted
    assert "limit=2" in redacted and "monkey=1" in redacted and "keyboard=2" in redacted
    assert redacted.count("REDACTED") == 5


async def test_a_token_in_the_query_string_is_not_in_the_json_log(service, caplog):
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access_log = logging.getLogger("uvicorn.access")
    access_log.addHandler(handler)
    try:
        async with service.client() as client:
            response = await client.get("/api/v1/generations", params={"access_token": TOKEN})
    finally:
        access_log.removeHandler(handler)
    assert response.status_code == 401
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any("access_token=REDACTED" in entry["message"] for entry in lines)  # the line was written
    for piece in TOKEN.split("."):
        assert piece not in stream.getvalue()


def test_spans_are_exported_with_their_url_attributes_redacted():
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(RedactUrlAttributes())
    provider.add_span_processor(SimpleSpanProcessor(exported))
    provider.get_tracer("test").start_span("GET", attributes={
        "http.url": f"http://127.0.0.1:8000/api/v1/generations?access_token={TOKEN}",
        "url.query": f"token={TOKEN}&limit=1", "http.target": "/api/v1/generations"}).end()
    [span] = exported.get_finished_spans()
    assert span.attributes["http.url"] == "http://127.0.0.1:8000/api/v1/generations?access_token=REDACTED"
    assert span.attributes["url.query"] == "token=REDACTED&limit=1"
    assert span.attributes["http.target"] == "/api/v1/generations"
