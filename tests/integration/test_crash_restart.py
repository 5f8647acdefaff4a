"""kill -9 of the service while generations are in flight loses nothing and submits nothing twice."""

from __future__ import annotations

import collections
import time

import httpx
import pytest

from chaos.stack import EmbeddedStack
from tests.support import auth_headers, submit, wait_terminal


@pytest.fixture
def slow_fal(stack: EmbeddedStack):
    """FAL jobs take a second, so a kill lands while they are in flight."""
    admin = stack.info.fal_admin_url
    httpx.put(f"{admin}/_emulator/behaviour", json={"processing_time_s": 1.0}, verify=stack.info.ca_bundle,
              timeout=5).raise_for_status()
    httpx.post(f"{admin}/_emulator/reset", verify=stack.info.ca_bundle, timeout=5)
    httpx.put(f"{admin}/_emulator/behaviour", json={"processing_time_s": 1.0}, verify=stack.info.ca_bundle,
              timeout=5).raise_for_status()
    yield
    httpx.post(f"{admin}/_emulator/reset", verify=stack.info.ca_bundle, timeout=5)


def fal_submissions_by_generation(stack: EmbeddedStack) -> collections.Counter:
    log = httpx.get(f"{stack.info.fal_admin_url}/_emulator/requests", verify=stack.info.ca_bundle, timeout=5).json()
    return collections.Counter(entry["generation_id"] for entry in log if entry["kind"] == "submit")


def test_killed_service_loses_no_generation_and_submits_none_twice(stack: EmbeddedStack, slow_fal):
    info = stack.info
    headers = auth_headers(info)
    accepted = [submit(info, headers, prompt=f"crash test {i}") for i in range(8)]
    assert all(r.status_code == 202 for r in accepted), [r.text for r in accepted]
    ids = [r.json()["id"] for r in accepted]

    time.sleep(0.6)  # the worker has claimed and submitted some of them by now
    stack.kill_service()
    stack.start_service()

    finished = [wait_terminal(stack.info, headers, generation_id, timeout_s=60) for generation_id in ids]
    assert [g["status"] for g in finished] == ["completed"] * len(ids)
    submissions = fal_submissions_by_generation(stack)
    assert {g: n for g, n in submissions.items() if n > 1} == {}
    assert set(ids) <= set(submissions)
