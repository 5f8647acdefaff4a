"""The session stack, calm and described by a stack file, for each load test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.faults import FaultController
from tests.load.helpers import wait_for_calm


@pytest.fixture
def stack_file(stack: EmbeddedStack, tmp_path: Path) -> Iterator[Path]:
    """The session stack, calm, described by a stack file as `genchaos up` writes it."""
    wait_for_calm(stack)
    path = tmp_path / "stack.json"
    stack.info.dump(path)
    yield path
    FaultController(stack.info.toxiproxy_url).reset()
