"""The session stack, calm and described by a stack file, for each load test; or with its service
restarted without the per-user bound, to show that a gate catches its loss."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.faults import FaultController
from tests.load.helpers import wait_for_calm, wait_for_empty_queue


@pytest.fixture
def stack_file(stack: EmbeddedStack, tmp_path: Path) -> Iterator[Path]:
    """The session stack, calm, described by a stack file as `genchaos up` writes it."""
    wait_for_calm(stack)
    path = tmp_path / "stack.json"
    stack.info.dump(path)
    yield path
    FaultController(stack.info.toxiproxy_url).reset()


@pytest.fixture
def unbounded_stack_file(stack: EmbeddedStack, tmp_path: Path) -> Iterator[Path]:
    """The session stack with its service restarted as if the hardened per-user bound were missing (far
    above any flood); afterwards the flood's backlog is waited out and the session's service put back."""
    stack.restart_service(env={"GENCHAOS_MAX_UNFINISHED_PER_USER": "100000"})
    try:
        wait_for_calm(stack)
        path = tmp_path / "stack.json"
        stack.info.dump(path)
        yield path
        wait_for_empty_queue(stack.info.service_url)
    finally:
        FaultController(stack.info.toxiproxy_url).reset()
        stack.restart_service(env={})
