"""Each 503 reason, produced by a real fault, answers with the report's exact sentence, Retry-After and
the reason header; the as_written profile maps errors by message text, the hardened one by type."""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

import asyncpg
import pytest

from service.errors import MESSAGES, Reason
from tests.service.conftest import wait_for

BODY = {"model_id": "fal-ai/flux/dev", "prompt": "a lighthouse at dusk"}


def assert_503(response, reason: Reason) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["detail"] == MESSAGES[reason]
    assert response.headers["X-Genchaos-503-Reason"] == reason.value
    assert int(response.headers["Retry-After"]) >= 1


async def post_until_503(client, timeout_s: float = 10):
    """POST until the service notices the fault (the hardened profile reads cached health)."""
    response = None

    async def refused() -> bool:
        nonlocal response
        response = await client.post("/api/v1/generations", json=BODY)
        return response.status_code == 503

    await wait_for(refused, timeout_s)
    return response


async def block_database(postgres_server, database_url: str) -> None:
    """A real outage: the database refuses new connections and loses its existing ones."""
    name = urlparse(database_url).path.lstrip("/")
    admin = await asyncpg.connect(postgres_server.dsn)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
    finally:
        await admin.close()


# (profile, what breaks, the reason the client sees). The as_written profile's substring mapping calls
# storage and FAL outages database outages, because their error text says "connection".
OUTAGES = [
    ("hardened", "storage", Reason.STORAGE_UNAVAILABLE),
    ("hardened", "fal", Reason.FAL_UNAVAILABLE),
    ("hardened", "database", Reason.DATABASE_UNAVAILABLE),
    ("as_written", "storage", Reason.DATABASE_UNAVAILABLE),
    ("as_written", "fal", Reason.DATABASE_UNAVAILABLE),
    ("as_written", "database", Reason.DATABASE_UNAVAILABLE),
]


@pytest.mark.parametrize(("profile", "broken", "reason"), OUTAGES)
async def test_dependency_outage_maps_to_reason(start_service, fal_emulator, storage_emulator, postgres_server,
                                                database_url, profile, broken, reason):
    async with start_service(profile=profile) as svc, svc.client(svc.token(uuid.uuid4())) as client:
        assert (await client.post("/api/v1/generations", json=BODY)).status_code == 202
        if broken == "storage":
            await storage_emulator.stop()
        elif broken == "fal":
            await fal_emulator.stop()
        else:
            await block_database(postgres_server, database_url)
        assert_503(await post_until_503(client), reason)
        metrics = (await client.get("/metrics")).text
    assert f'genchaos_http_503_total{{reason="{reason.value}"}}' in metrics


@pytest.mark.parametrize(("profile", "threshold"), [("as_written", 1), ("hardened", 2)])
async def test_open_breaker_refuses_with_high_load(start_service, fal_emulator, profile, threshold):
    await fal_emulator.set_behaviour(submit_error_rate=1.0)
    async with start_service(profile=profile, breaker_failure_threshold=threshold,
                             breaker_recovery_timeout_s=60) as svc:
        async with svc.client(svc.token(uuid.uuid4())) as client:
            first = await client.post("/api/v1/generations", json=BODY)
            assert first.status_code == 202
            response = await post_until_503(client, timeout_s=15)
            assert_503(response, Reason.BREAKER_OPEN)
            assert int(response.headers["Retry-After"]) > 30  # the breaker's own remaining time
            ready = (await client.get("/readyz")).json()
    assert ready["breakers"]["fal"]["state"] == "open"


async def test_hardened_sheds_load_beyond_queue_depth(start_service, fal_emulator):
    await fal_emulator.set_behaviour(queue_time_s=60)
    async with start_service(max_queue_depth=2, shutdown_grace_s=0.2) as svc, svc.client(svc.token(uuid.uuid4())) as client:
        for _ in range(2):
            assert (await client.post("/api/v1/generations", json=BODY)).status_code == 202
        assert_503(await client.post("/api/v1/generations", json=BODY), Reason.OVERLOADED)
