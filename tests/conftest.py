"""Shared fixtures: a real PostgreSQL server per session, a fresh database per test, the embedded
stack per session, and the rule that a missing system tool skips locally but fails in CI."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from chaos.postgres import PostgresServer
from chaos.stack import EmbeddedStack


def require_tool(name: str) -> str:
    """Path of a system tool; skip the test without it, unless GENCHAOS_REQUIRE_TOOLS=1 (CI) fails it."""
    path = shutil.which(name)
    if path:
        return path
    reason = f"'{name}' is not installed (Debian package); .ci/run installs it"
    if os.environ.get("GENCHAOS_REQUIRE_TOOLS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


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

