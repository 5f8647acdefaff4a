"""One embedded stack for the whole chaos session; the runner restarts its service per scenario."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaos.run.runner import EmbeddedTarget
from chaos.stack.embedded import EmbeddedStack


@pytest.fixture(scope="session")
def chaos_target() -> Iterator[EmbeddedTarget]:
    with EmbeddedStack() as stack:
        yield EmbeddedTarget(stack)
