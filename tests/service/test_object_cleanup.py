"""The object a failed generation may have left is removed even when the process removing it dies: the
failure records it in the row, and the next process's sweep finishes the job."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from tests.service.conftest import SERVICE_KEY, wait_for

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


async def test_an_orphan_whose_removal_was_cut_short_is_removed_by_the_next_process(start_service, storage_emulator,
                                                                                     database_url):
    user, generation = uuid.uuid4(), uuid.uuid4()
    path = f"{user}/{generation}.png"
    async with start_service() as svc:  # migrates the schema, creates the bucket
        storage = svc.app.state.profile.deps.storage
        bucket = storage.bucket
        await storage.upload_png(path, PNG)
    # what a process killed mid-removal leaves: a failed row recording the object, the object still stored
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """INSERT INTO generations (id, user_id, model_id, prompt, status, error, orphan_path, completed_at)
               VALUES ($1, $2, 'fal-ai/flux/dev', 'p', 'failed', 'ConnectError: storage down', $3, now())""",
            generation, user, path)
        async with httpx.AsyncClient(base_url=f"{storage_emulator.url}/storage/v1", timeout=10,
                                     headers={"apikey": SERVICE_KEY, "Authorization": f"Bearer {SERVICE_KEY}"}) as api:
            assert (await api.get(f"/object/{bucket}/{path}")).status_code == 200

            async with start_service():
                async def removed() -> bool:
                    return (await api.get(f"/object/{bucket}/{path}")).status_code in (400, 404)

                await wait_for(removed, what="the next process to remove the recorded orphan")

                async def forgotten() -> bool:
                    return await conn.fetchval("SELECT orphan_path FROM generations WHERE id = $1", generation) is None

                await wait_for(forgotten, what="the row to forget the removed object")
    finally:
        await conn.close()
