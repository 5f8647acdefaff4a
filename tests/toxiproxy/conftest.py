"""Shared fixtures: our Toxiproxy server on uvloop in a background thread, TCP upstreams.

Tests talk to the server the way users do: HTTP clients and plain sockets from the test
thread, so they are synchronous and every blocking call carries a timeout.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvloop
from toxiproxy_support import IO_TIMEOUT_S, Upstream

from chaos.toxiproxy import ToxiproxyServer, start_server


class ServerThread:
    """A ToxiproxyServer running on its own uvloop event loop thread."""

    def __init__(self, **options) -> None:
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server: ToxiproxyServer = self.call(start_server(**options))

    def call(self, coroutine, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    @property
    def url(self) -> str:
        return self.server.url

    def clear(self) -> None:
        async def clear():
            self.server.collection.clear()
        self.call(clear())

    def stop(self) -> None:
        try:
            self.call(self.server.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()


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
