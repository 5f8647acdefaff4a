"""Fixtures of the reliability tests: control of the FAL emulator and of Toxiproxy on the session
stack, each put back to its default afterwards so the next test finds a healthy stack."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.faults import EmulatorControl, FalEmulatorControl, FaultController
from tests.reliability.observe import query_database, wait_for


@pytest.fixture
def fal_control(stack: EmbeddedStack) -> Iterator[FalEmulatorControl]:
    """The FAL emulator's admin API, with an empty log and default behaviour before and after the test."""
    control = FalEmulatorControl(stack.info.fal_admin_url, stack.info.ca_bundle)
    control.reset()
    yield control
    control.reset()
    control.close()


@pytest.fixture
def storage_control(stack: EmbeddedStack) -> Iterator[EmulatorControl]:
    control = EmulatorControl(stack.info.storage_admin_url)
    control.reset()
    yield control
    control.close()


@pytest.fixture
def faults(stack: EmbeddedStack) -> Iterator[FaultController]:
    """Toxiproxy of the stack; every toxic removed and every proxy enabled after the test."""
    controller = FaultController(stack.info.toxiproxy_url)
    yield controller
    controller.reset()


@pytest.fixture
def restore_service(stack: EmbeddedStack) -> Iterator[None]:
    """For tests that kill, stop or reconfigure the service: afterwards a fresh one runs with the
    session's settings, and the database it needs is up."""
    yield
    if not (stack.postgres.data_dir / "postmaster.pid").exists():
        stack.postgres.restart()
    stack.restart_service(env={})
    wait_for(lambda: httpx.get(f"{stack.info.service_url}/readyz", timeout=5).status_code == 200,
             timeout_s=30, what="the restored service becoming ready")


@pytest.fixture
def empty_queue(stack: EmbeddedStack) -> None:
    """Wait until no generation of earlier tests is pending or processing, so this test's work is not
    queued behind theirs."""
    wait_for(lambda: query_database(stack.info.database_direct_url,
                                    "SELECT count(*) AS n FROM generations WHERE status IN ('pending', 'processing')")
             [0]["n"] == 0, timeout_s=90, what="the queue of earlier generations draining", interval_s=0.5)
