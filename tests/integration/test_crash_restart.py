"""kill -9 of the service while generations are in flight loses nothing and submits nothing twice."""

from __future__ import annotations

import collections
import time

import pytest

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.faults import FalEmulatorControl
from tests.support import auth_headers, submit, wait_terminal


@pytest.fixture
def fal(stack: EmbeddedStack):
    """The FAL emulator with second-long jobs, so a kill lands while they are in flight."""
    control = FalEmulatorControl(stack.info.fal_admin_url, stack.info.ca_bundle)
    control.reset()
    control.set_behaviour(processing_time_s=1.0)
    yield control
    control.reset()
    control.close()


def test_killed_service_loses_no_generation_and_submits_none_twice(stack: EmbeddedStack, fal: FalEmulatorControl):
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
    submissions = collections.Counter(entry["generation_id"] for entry in fal.requests() if entry["kind"] == "submit")
    assert {g: n for g, n in submissions.items() if n > 1} == {}
    assert set(ids) <= set(submissions)
