"""Fixtures for the service's component tests: the service, both emulators and a real PostgreSQL,
each served by uvicorn on 127.0.0.1 (free port) inside the test's event loop, and always stopped."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import fal_client
import httpx
import pytest
import uvicorn

from chaos.emulators.fal.app import create_app as create_fal_app
from chaos.emulators.storage import create_app as create_storage_app
from chaos.stack.processes import free_port
from chaos.stack.tls import make_test_ca
from chaos.stack.tokens import mint_access_token
from service.app import create_app
from service.settings import Settings

JWT_SECRET = "test-jwt-secret-with-enough-length-for-hs256"
JWT_ISSUER = "http://127.0.0.1:54321/auth/v1"
SERVICE_KEY = "test-service-key"
FAL_KEY = "test-key-id:test-key-secret"


@asynccontextmanager
async def serve(app, **ssl) -> AsyncIterator[int]:
    """Run an ASGI app with uvicorn on a free 127.0.0.1 port; yields the port, stops it on exit."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on",
                                           timeout_graceful_shutdown=0.5, **ssl))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("server exited during start-up")
                await asyncio.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        async with asyncio.timeout(30):
            await asyncio.gather(task, return_exceptions=True)


@dataclass
class Emulator:
    url: str
    stop: Callable[[], Awaitable[None]]

    async def requests(self) -> list[dict]:
        async with httpx.AsyncClient(verify=False) as client:
            return (await client.get(f"{self.url}/_emulator/requests")).json()

    async def set_behaviour(self, **values) -> None:
        async with httpx.AsyncClient(verify=False) as client:
            (await client.put(f"{self.url}/_emulator/behaviour", json=values)).raise_for_status()


@asynccontextmanager
async def _emulator(app, scheme: str, **ssl) -> AsyncIterator[Emulator]:
    stopper = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def run() -> None:
        async with serve(app, **ssl) as port:
            ready.set_result(port)
            await stopper.wait()

    task = asyncio.create_task(run())

    async def stop() -> None:
        stopper.set()
        await asyncio.gather(task, return_exceptions=True)

    try:
        port = await asyncio.wait_for(asyncio.shield(ready), 30)
        yield Emulator(f"{scheme}://127.0.0.1:{port}", stop)
    finally:
        await stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    return make_test_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def fal_emulator(tls_files, monkeypatch) -> AsyncIterator[Emulator]:
    """The FAL emulator over TLS; fal_client and httpx are pointed at it the way the stack's environment does."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca_bundle))
    async with _emulator(create_fal_app(seed=7), "https", ssl_certfile=str(tls_files.server_cert),
                         ssl_keyfile=str(tls_files.server_key)) as emulator:
        # fal_client froze FAL_QUEUE_RUN_HOST at import; this is the value the environment would have set.
        monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", emulator.url + "/")
        yield emulator


@pytest.fixture
async def storage_emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    async with _emulator(create_storage_app(tmp_path / "storage", SERVICE_KEY, JWT_SECRET), "http") as emulator:
        yield emulator


@dataclass
class RunningService:
    url: str
    app: object
    settings: Settings

    def token(self, user_id: uuid.UUID | str | None = None, **claims) -> str:
        return mint_access_token(JWT_SECRET, JWT_ISSUER, str(user_id) if user_id else None, **claims)

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)


def service_settings(database_url: str, storage_url: str, **overrides) -> Settings:
    values = dict(
        database_url=database_url, supabase_url=storage_url, supabase_service_key=SERVICE_KEY,
        supabase_jwt_secret=JWT_SECRET, supabase_jwt_issuer=JWT_ISSUER, fal_key=FAL_KEY, timing="fast",
        health_refresh_interval_s=0.2)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def start_service(database_url, fal_emulator, storage_emulator):
    """`async with start_service(profile=..., **settings) as svc:` runs the service against the emulators."""

    @asynccontextmanager
    async def start(**overrides) -> AsyncIterator[RunningService]:
        settings = service_settings(database_url, storage_emulator.url, **overrides)
        app = create_app(settings)
        async with serve(app) as port:
            yield RunningService(f"http://127.0.0.1:{port}", app, settings)

    return start


@pytest.fixture
async def service(start_service) -> AsyncIterator[RunningService]:
    """The service with default (hardened) profile and fast timings."""
    async with start_service() as running:
        yield running


async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float = 20, what: str = "condition") -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.05)
