"""Contention is not an outage, and an outage-free slow link is not overload: the queue bound's lock costs the
server's work only (a database 300 ms away slows POSTs down but does not refuse them), and waiting for our own
busy connections is PoolExhausted however late the loop gets to it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlparse

import pytest

from service.db import Database, NewGeneration
from service.errors import PoolExhausted

LATENCY_S = 0.3
CONCURRENT = 4


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    """Copy bytes, each chunk delivered ``delay_s`` after it arrived, in order."""
    due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while (item := await due.get())[1]:
            await asyncio.sleep(max(0.0, item[0] - time.monotonic()))
            writer.write(item[1])
            await writer.drain()
        writer.close()

    delivery = asyncio.create_task(deliver())
    try:
        while chunk := await reader.read(65536):
            due.put_nowait((time.monotonic() + delay_s, chunk))
    finally:
        due.put_nowait((time.monotonic() + delay_s, b""))
        await asyncio.gather(delivery, return_exceptions=True)


@asynccontextmanager
async def slow_replies(database_url: str, delay_s: float) -> AsyncIterator[str]:
    """A TCP proxy to the database whose replies arrive ``delay_s`` late; yields the DSN through it."""
    target = urlparse(database_url)

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(target.hostname, target.port)
        await asyncio.gather(_pipe(client_reader, server_writer, 0.0), _pipe(server_reader, client_writer, delay_s),
                             return_exceptions=True)

    proxy = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    try:
        credentials = target.netloc.rpartition("@")[0]
        yield target._replace(netloc=f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}").geturl()
    finally:
        proxy.close()


async def test_slow_database_does_not_read_as_overload(database_url):
    direct = await Database.connect(database_url, min_size=1, max_size=1, connect_timeout_s=5, command_timeout_s=5,
                                    startup_timeout_s=10)  # migrates at full speed
    await direct.close()
    async with slow_replies(database_url, LATENCY_S) as slow_url:
        db = await Database.connect(slow_url, min_size=CONCURRENT, max_size=CONCURRENT, connect_timeout_s=10,
                                    command_timeout_s=10, startup_timeout_s=30)
        try:
            user = uuid.uuid4()
            results = await asyncio.gather(*(
                db.insert_generation(NewGeneration(user, "fal-ai/flux/dev", f"p{i}", None, None, {}, None, None),
                                     max_unfinished=100)
                for i in range(CONCURRENT)), return_exceptions=True)
        finally:
            await db.close()
    refused = [r for r in results if isinstance(r, BaseException)]
    assert refused == [], f"{len(refused)} of {CONCURRENT} refused: {refused}"
    assert all(created for _, created in results)


async def test_pool_wait_ended_by_a_starved_loop_is_overload(database_url):
    """On a starved CPU the loop runs late, so a busy connection can come back in the same turn as a waiter's
    timeout fires, and the pool no longer looks full when the timeout is handled. The waiter still waited
    for our own busy connection: overload, not the database being down. And the holder's work stands even
    if the late loop makes the connection's reset time out."""
    db = await Database.connect(database_url, min_size=1, max_size=1, connect_timeout_s=0.5, command_timeout_s=5,
                                startup_timeout_s=10)
    loop = asyncio.get_running_loop()

    async def busy_then_starved() -> None:
        async with db.connection() as conn:
            await conn.fetchval("SELECT 1")
            await asyncio.sleep(0.2)
            # Two turns on, the release below has sent its reset query: stall the loop past the waiter's
            # timeout, so the reply and the timeout are handled in the same turn.
            loop.call_soon(loop.call_soon, time.sleep, 0.6)

    holder = asyncio.create_task(busy_then_starved())
    try:
        await asyncio.sleep(0.05)
        with pytest.raises(PoolExhausted):
            async with db.connection():
                pass
    finally:
        await holder
        await db.close()
