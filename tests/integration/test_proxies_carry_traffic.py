"""Each Toxiproxy proxy carries its dependency's traffic: taking one down is seen by the service."""

from __future__ import annotations

import time

import httpx
import pytest

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.faults import FaultController
from tests.support import auth_headers, submit

MESSAGES = {
    "postgres": ("database", "Database service temporarily unavailable. Please try again later."),
    "storage": ("storage", "File storage service temporarily unavailable. Please try again later."),
    "fal": ("fal", "AI generation service temporarily unavailable. Please try again later."),
}


def dependency_state(info, dependency: str) -> dict:
    return httpx.get(f"{info.service_url}/readyz", timeout=5).json()["dependencies"][dependency]


def wait_for(predicate, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("proxy", ["postgres", "storage", "fal"])
def test_proxy_down_makes_dependency_unavailable_then_recovers(stack: EmbeddedStack, proxy: str):
    info = stack.info
    dependency, message = MESSAGES[proxy]
    faults = FaultController(info.toxiproxy_url)
    headers = auth_headers(info)
    faults.disable(proxy)
    try:
        wait_for(lambda: dependency_state(info, dependency)["state"] != "up")
        refused = wait_for(lambda: (r := submit(info, headers)).status_code == 503 and r)
        assert refused.json()["detail"] == message
        assert int(refused.headers["Retry-After"]) >= 1
    finally:
        faults.enable(proxy)
    wait_for(lambda: dependency_state(info, dependency)["state"] == "up")
    assert wait_for(lambda: submit(info, headers).status_code == 202)
