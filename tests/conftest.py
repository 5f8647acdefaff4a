"""Shared fixtures: a real PostgreSQL server per session, a fresh database per test, the embedded
stack per session (tests/support.py holds the helpers, e.g. require_tool)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.postgres import PostgresServer


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

