"""The embedded Toxiproxy server, run in this process on the event loop it uses in production (uvloop),
survives 10,000 connection open/close cycles under toxic churn without growing its file descriptors
or asyncio tasks."""

from __future__ import annotations

import asyncio
import itertools
import random

import httpx
import psutil
import pytest
import uvloop

from chaos.toxiproxy import start_server

CYCLES = 10_000
CLIENTS = 50
PAYLOAD = b"ping-pong"
FD_TOLERANCE = 10
TASK_TOLERANCE = 3
# Every toxic type, with attributes that keep an echo round trip short; some of them break the
# connection on purpose (reset_peer, timeout, limit_data), which the cycles must survive.
CHURNED_TOXICS = [
    ("latency", {"latency": 2, "jitter": 1}),
    ("bandwidth", {"rate": 1000}),
    ("slicer", {"average_size": 2, "size_variation": 1, "delay": 10}),
    ("slow_close", {"delay": 2}),
    ("reset_peer", {"timeout": 1}),
    ("timeout", {"timeout": 5}),
    ("limit_data", {"bytes": 4}),
    ("noop", {}),
]


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The upstream: sends back whatever it reads until the other side closes."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def one_cycle(port: int) -> bool:
    """Open a connection through the proxy, echo once, close; False if a toxic broke it."""
    try:
        async with asyncio.timeout(5):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(PAYLOAD)
                await writer.drain()
                return await reader.readexactly(len(PAYLOAD)) == PAYLOAD
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except ConnectionError:
                    pass
    except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
        return False


async def churn_toxics(api: httpx.AsyncClient, stop: asyncio.Event, seed: int) -> int:
    """Add, update and remove toxics on the proxy until ``stop``; returns how many changes were made."""
    rng, changes = random.Random(seed), 0
    for n in itertools.count():
        if stop.is_set():
            return changes
        kind, attributes = rng.choice(CHURNED_TOXICS)
        name = f"churn_{n}"
        created = await api.post("/proxies/echo/toxics", json={
            "name": name, "type": kind, "stream": rng.choice(["upstream", "downstream"]),
            "toxicity": rng.choice([1.0, 0.5]), "attributes": attributes})
        assert created.status_code == 200, created.text
        await asyncio.sleep(rng.uniform(0, 0.02))
        updated = await api.post(f"/proxies/echo/toxics/{name}", json={"toxicity": rng.random()})
        assert updated.status_code == 200, updated.text
        await asyncio.sleep(rng.uniform(0, 0.02))
        removed = await api.delete(f"/proxies/echo/toxics/{name}")
        assert removed.status_code == 204, removed.text
        changes += 3


async def settled(measure, baseline: int, tolerance: int, timeout_s: float = 10) -> int:
    """``measure()`` once it is back within ``tolerance`` of ``baseline`` (closing takes a moment)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    value = measure()
    while value > baseline + tolerance and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        value = measure()
    return value


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_ten_thousand_connections_and_toxic_churn_leak_nothing():
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(connection_cycles_under_churn())


async def connection_cycles_under_churn() -> None:
    process = psutil.Process()
    upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
    server = await start_server()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
            upstream_port = upstream.sockets[0].getsockname()[1]
            created = await api.post("/proxies", json={"name": "echo", "listen": "127.0.0.1:0",
                                                       "upstream": f"127.0.0.1:{upstream_port}"})
            assert created.status_code == 201, created.text
            port = int(created.json()["listen"].rsplit(":", 1)[1])
            assert all(await asyncio.gather(*(one_cycle(port) for _ in range(CLIENTS)))), "the proxy does not echo"
            await asyncio.sleep(0.5)  # the warm-up connections finish closing on both sides
            fds_before, tasks_before = process.num_fds(), len(asyncio.all_tasks())

            stop = asyncio.Event()
            churn = asyncio.create_task(churn_toxics(api, stop, seed=7))
            remaining = iter(range(CYCLES))

            async def client() -> list[bool]:
                return [await one_cycle(port) for _ in remaining]

            outcomes = [ok for results in await asyncio.gather(*(client() for _ in range(CLIENTS))) for ok in results]
            stop.set()
            changes = await churn

            assert len(outcomes) == CYCLES
            assert (await api.get("/proxies/echo/toxics")).json() == []
            assert await one_cycle(port), "the proxy no longer echoes after the churn"
            fds_after = await settled(process.num_fds, fds_before, FD_TOLERANCE)
            tasks_after = await settled(lambda: len(asyncio.all_tasks()), tasks_before, TASK_TOLERANCE)
            print(f"\n{CYCLES} cycles ({outcomes.count(False)} broken by toxics), {changes} toxic changes; "
                  f"fds {fds_before} -> {fds_after}, asyncio tasks {tasks_before} -> {tasks_after}")
            assert fds_after <= fds_before + FD_TOLERANCE
            assert tasks_after <= tasks_before + TASK_TOLERANCE
    finally:
        await server.close()
        upstream.close()
        await upstream.wait_closed()
