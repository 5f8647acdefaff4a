"""Shared fixtures: our Toxiproxy server on uvloop in a background thread, TCP upstreams.

Tests talk to the server the way users do: HTTP clients and plain sockets from the test
thread, so they are synchronous and every blocking call carries a timeout.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from toxiproxy_support import IO_TIMEOUT_S, ServerThread, Upstream


@pytest.fixture(scope="session")
def toxiproxy() -> Iterator[ServerThread]:
    server = ServerThread()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _api_client(toxiproxy: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=toxiproxy.url, timeout=IO_TIMEOUT_S) as client:
        yield client


@pytest.fixture
def api(toxiproxy: ServerThread, _api_client: httpx.Client) -> Iterator[httpx.Client]:
    """An HTTP client on the shared server; every proxy is removed after the test."""
    try:
        yield _api_client
    finally:
        toxiproxy.clear()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def echo_upstream() -> Iterator[Upstream]:
    server = Upstream(echo=True)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def server_with_metrics() -> Iterator[ServerThread]:
    """A server of its own with per-proxy byte counters on /metrics (`-proxy-metrics`)."""
    server = ServerThread(proxy_metrics=True)
    try:
        yield server
    finally:
        server.stop()
