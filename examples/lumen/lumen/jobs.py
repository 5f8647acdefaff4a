"""The `lumen_jobs` table: the queue the worker drains and the record users read.

A job is `queued` until a worker claims it (`running`) and ends `done` or `error`. A running job's
`updated_at` is refreshed at every attempt; one left untouched for longer than the lease (its worker
died, or lost the answer to its claim) is claimed again. At startup every `running` job goes back
to `queued`, since this process is the only one working on the table.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

SCHEMA = """
CREATE TABLE IF NOT EXISTS lumen_jobs (
    job_id      uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    model       text NOT NULL,
    prompt      text NOT NULL,
    state       text NOT NULL DEFAULT 'queued',
    result_url  text,
    failure     text,
    tries       integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS lumen_jobs_by_owner ON lumen_jobs (owner_id, created_at DESC);
CREATE INDEX IF NOT EXISTS lumen_jobs_open ON lumen_jobs (created_at) WHERE state IN ('queued', 'running');
"""

PUBLIC_COLUMNS = "job_id, state, result_url, failure"


def as_public(row: asyncpg.Record) -> dict[str, Any]:
    return {"job_id": str(row["job_id"]), "state": row["state"],
            "result_url": row["result_url"], "failure": row["failure"]}


class Jobs:
    def __init__(self, pool: asyncpg.Pool, timeout_s: float) -> None:
        self.pool = pool
        self.timeout_s = timeout_s
        self.requeued = 0  # jobs found `running` at startup and put back

    @classmethod
    async def open(cls, dsn: str, timeout_s: float) -> Jobs:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10, timeout=timeout_s)
        jobs = cls(pool, timeout_s)
        async with pool.acquire(timeout=timeout_s) as con:
            await con.execute("SELECT pg_advisory_lock(4242)")
            try:
                await con.execute(SCHEMA)
                requeued = await con.execute("UPDATE lumen_jobs SET state = 'queued' WHERE state = 'running'")
            finally:
                await con.execute("SELECT pg_advisory_unlock(4242)")
        jobs.requeued = int(requeued.split()[-1])
        return jobs

    async def close(self) -> None:
        await self.pool.close()

    async def _run(self, method: str, query: str, *args: Any) -> Any:
        async with self.pool.acquire(timeout=self.timeout_s) as con:
            return await getattr(con, method)(query, *args, timeout=self.timeout_s)

    async def ping(self) -> None:
        await self._run("fetchval", "SELECT 1")

    async def add(self, owner: str, model: str, prompt: str) -> dict[str, Any]:
        row = await self._run(
            "fetchrow",
            f"INSERT INTO lumen_jobs (job_id, owner_id, model, prompt) VALUES ($1, $2, $3, $4) "
            f"RETURNING {PUBLIC_COLUMNS}",
            uuid.uuid4(), uuid.UUID(owner), model, prompt)
        return as_public(row)

    async def one(self, owner: str, job_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self._run(
            "fetchrow", f"SELECT {PUBLIC_COLUMNS} FROM lumen_jobs WHERE job_id = $1 AND owner_id = $2",
            job_id, uuid.UUID(owner))
        return as_public(row) if row else None

    async def of_owner(self, owner: str) -> list[dict[str, Any]]:
        rows = await self._run(
            "fetch", f"SELECT {PUBLIC_COLUMNS} FROM lumen_jobs WHERE owner_id = $1 "
            "ORDER BY created_at DESC, job_id DESC", uuid.UUID(owner))
        return [as_public(r) for r in rows]

    async def claim(self, lease_s: float) -> asyncpg.Record | None:
        """Take the oldest queued (or abandoned running) job, or None."""
        return await self._run("fetchrow", """
            UPDATE lumen_jobs SET state = 'running', tries = tries + 1, updated_at = clock_timestamp()
            WHERE job_id = (SELECT job_id FROM lumen_jobs
                            WHERE state = 'queued'
                               OR (state = 'running' AND updated_at < clock_timestamp() - make_interval(secs => $1))
                            ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING job_id, owner_id, model, prompt""", lease_s)

    async def touch(self, job_id: uuid.UUID) -> None:
        await self._run("execute", "UPDATE lumen_jobs SET updated_at = clock_timestamp() "
                        "WHERE job_id = $1 AND state = 'running'", job_id)

    async def finish(self, job_id: uuid.UUID, result_url: str) -> None:
        await self._run("execute", "UPDATE lumen_jobs SET state = 'done', result_url = $2, failure = NULL, "
                        "updated_at = clock_timestamp() WHERE job_id = $1 AND state = 'running'", job_id, result_url)

    async def fail(self, job_id: uuid.UUID, failure: str) -> None:
        await self._run("execute", "UPDATE lumen_jobs SET state = 'error', failure = $2, "
                        "updated_at = clock_timestamp() WHERE job_id = $1 AND state = 'running'", job_id, failure)
