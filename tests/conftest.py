"""Shared fixtures: a real PostgreSQL server per session, a fresh database per test, the embedded
stack per session, a private temp directory (tests/support.py holds the helpers, e.g. require_tool).

`make test` runs two pytest-xdist workers. The tests marked chaos, load or serial judge latencies and
timed fault windows (or load both cores), so they form one xdist group: they run one after another
on one worker, never beside each other, and the rest of the suite shares the other worker.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.postgres import PostgresServer

SERIAL_MARKERS = ("chaos", "load", "serial")

# The property tests draw new examples on every run, and keep what failed in .hypothesis/. CI runs them
# with `--hypothesis-profile=ci`: the same examples every run, so a red CI is reproducible.
settings.register_profile("ci", derandomize=True, print_blob=True)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(name) for name in SERIAL_MARKERS):
            item.add_marker(pytest.mark.xdist_group("serial"))


@pytest.hookimpl(tryfirst=True)  # before the worker reports what it collected
def pytest_collection_finish(session: pytest.Session) -> None:
    """Under --dist loadgroup, refuse to run at all rather than let the serial tests run side by side."""
    if getattr(session.config.option, "loadgroup", False):
        ungrouped = [item.nodeid for item in session.items
                     if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
        if ungrouped:
            raise pytest.UsageError(f"pytest-xdist did not group {ungrouped[0]} (and {len(ungrouped) - 1} more): "
                                    "this pytest and pytest-xdist do not work together")


@pytest.fixture
def own_tmpdir(monkeypatch) -> Iterator[Path]:
    """TMPDIR for this test and every process it starts, so the temp directories found there, and the
    processes naming it, are this test's own even while other tests run stacks beside it. Readable by
    all: PostgreSQL runs as another user and must reach its directory."""
    root = Path(tempfile.mkdtemp(prefix="genchaos-test-tmp-"))
    root.chmod(0o755)
    monkeypatch.setenv("TMPDIR", str(root))
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: PostgresServer) -> str:
    return postgres_server.dsn


@pytest.fixture
async def database_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database for one test."""
    return await postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def stack() -> Iterator[EmbeddedStack]:
    """One embedded stack (hardened profile, fast timings) shared by the session's stack tests."""
    with EmbeddedStack(profile="hardened", timing="fast") as embedded:
        yield embedded

