"""Traces explain a single request: the client's traceparent joins the service's spans, the worker's
trace links back to the request, and every FAL retry shows as its own numbered attempt."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import httpx
import pytest

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.faults import FalEmulatorControl
from tests.support import auth_headers, submit, wait_terminal


def spans(traces_file: str) -> list[dict]:
    found = []
    for line in Path(traces_file).read_text().splitlines():
        for resource_spans in json.loads(line)["resourceSpans"]:
            for scope_spans in resource_spans["scopeSpans"]:
                found.extend(scope_spans["spans"])
    return found


def attribute(span: dict, key: str):
    for item in span.get("attributes", []):
        if item["key"] == key:
            return next(iter(item["value"].values()))
    return None


def wait_for_spans(traces_file: str, predicate, timeout_s: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [s for s in spans(traces_file) if predicate(s)] if Path(traces_file).exists() else []
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("expected spans never appeared in the traces file")


@pytest.fixture
def fal(stack: EmbeddedStack):
    control = FalEmulatorControl(stack.info.fal_admin_url, stack.info.ca_bundle)
    control.reset()
    yield control
    control.reset()
    control.close()


def test_client_traceparent_joins_the_request_and_the_worker_links_back(stack: EmbeddedStack):
    info = stack.info
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    headers = {**auth_headers(info), "traceparent": f"00-{trace_id}-{parent_id}-01"}
    accepted = submit(info, headers)
    assert wait_terminal(info, headers, accepted.json()["id"])["status"] == "completed"

    joined = wait_for_spans(info.traces_file, lambda s: s["traceId"] == trace_id and s.get("parentSpanId") == parent_id)
    [server] = [s for s in joined if s["name"] == "POST /api/v1/generations"]  # the polls carry the traceparent too
    assert server["kind"] == 2  # SERVER
    assert attribute(server, "http.route") == "/api/v1/generations"
    assert attribute(server, "http.response.status_code") == "202"
    generation_id = accepted.json()["id"]
    process = wait_for_spans(info.traces_file, lambda s: s["name"] == "generation.process"
                             and attribute(s, "genchaos.generation_id") == generation_id)[0]
    assert any(link["traceId"] == trace_id for link in process.get("links", []))
    steps = {s["name"] for s in spans(info.traces_file) if s["traceId"] == process["traceId"]}
    assert {"generation.fal", "fal.attempt", "generation.download", "generation.upload", "generation.finalize"} <= steps


def test_a_token_in_the_query_string_never_reaches_the_traces_and_health_polls_are_not_traced(stack: EmbeddedStack):
    info = stack.info
    secret = secrets.token_urlsafe(24)
    with httpx.Client(base_url=info.service_url, timeout=10, trust_env=False) as client:
        assert client.get("/healthz").status_code == 200
        trace_id = secrets.token_hex(16)
        listed = client.get("/api/v1/generations", params={"limit": 1, "access_token": secret},
                            headers={**auth_headers(info), "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    assert listed.status_code == 200
    [server] = wait_for_spans(info.traces_file, lambda s: s["traceId"] == trace_id and s["kind"] == 2)
    assert attribute(server, "url.query") == "limit=1&access_token=REDACTED"
    text = Path(info.traces_file).read_text()
    assert secret not in text
    assert not [s for s in spans(info.traces_file) if attribute(s, "url.path") == "/healthz"]  # ended first, so exported first


def test_each_fal_retry_is_a_numbered_attempt_with_its_delay(stack: EmbeddedStack, fal: FalEmulatorControl):
    info = stack.info
    fal.set_behaviour(submit_error_rate=1.0, submit_error_status=500)
    headers = auth_headers(info)
    generation_id = submit(info, headers).json()["id"]
    time.sleep(1.5)  # the first attempts fail with 500s
    fal.set_behaviour(submit_error_rate=0.0)
    assert wait_terminal(info, headers, generation_id, timeout_s=60)["status"] in ("completed", "failed")

    process = wait_for_spans(info.traces_file, lambda s: s["name"] == "generation.process"
                             and attribute(s, "genchaos.generation_id") == generation_id)[0]
    in_trace = [s for s in spans(info.traces_file) if s["traceId"] == process["traceId"]]
    attempts = sorted(int(attribute(s, "genchaos.attempt")) for s in in_trace if s["name"] == "fal.attempt")
    assert attempts[:2] == [1, 2]
    retry_events = [e for s in in_trace for e in s.get("events", []) if e["name"] == "retry"]
    assert retry_events and all(attribute(e, "sleep_s") is not None for e in retry_events)
