"""PostgreSQL access: the pool, versioned migrations, and every query the API and worker run.

Every operation is bounded (connect, acquire and command timeouts plus an overall deadline), so
a dead or hung database turns into a quick error, never a hanging request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg

from service.errors import Overloaded, PoolExhausted, UserLimitReached

log = logging.getLogger(__name__)

MIGRATION_LOCK_ID = 7_240_311_905  # pg_advisory_lock key shared by every replica
ADMISSION_LOCK_ID = 7_240_311_906  # serialises "count the queue, then insert" across requests and replicas
ADMISSION_LOCK_TIMEOUT = "500ms"
USER_LIMIT_SQLSTATE = "GC429"  # raised by admit_generation (migration 0004) for a user at their limit
CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                     asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)


_COUNT_UNFINISHED = ("SELECT count(*) FROM (SELECT 1 FROM generations WHERE status IN ('pending', 'processing') "
                     "LIMIT $1) AS unfinished")


@dataclass(frozen=True)
class NewGeneration:
    user_id: uuid.UUID
    model_id: str
    prompt: str
    negative_prompt: str | None
    reference_image_url: str | None
    parameters: dict[str, Any]
    idempotency_key: str | None
    request_fingerprint: str | None
    traceparent: str | None = None


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every `NNNN_name.sql` in service/migrations, in version order."""
    folder = resources.files("service") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations under an advisory lock, so replicas starting together apply each once."""
    applied_now = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            applied_now.append(name)
            log.info("applied migration %s", name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied_now


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release a connection without asyncpg's reset query (unlock all advisory locks, close cursors, unlisten,
    reset settings): one round trip, and a span, per query otherwise. The service leaves no session state
    behind: its locks and settings are transaction-scoped (migration 0003) and the migration lock is released
    explicitly. asyncpg still rolls back a transaction left open before calling this."""


class Database:
    """The asyncpg pool plus the service's queries; rows come back as dicts."""

    def __init__(self, pool: asyncpg.Pool, *, connect_timeout_s: float, command_timeout_s: float) -> None:
        self.pool = pool
        self._slots = asyncio.Semaphore(pool.get_max_size())  # one per pooled connection; see connection()
        self._connect_timeout_s = connect_timeout_s
        self._deadline_s = connect_timeout_s + command_timeout_s

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int, max_size: int, connect_timeout_s: float,
                      command_timeout_s: float, startup_timeout_s: float) -> Database:
        """Create the pool (retrying while the server comes up) and migrate the schema."""
        give_up_at = time.monotonic() + startup_timeout_s
        while True:
            try:
                pool = await asyncpg.create_pool(
                    dsn, min_size=min_size, max_size=max_size, timeout=connect_timeout_s,
                    command_timeout=command_timeout_s, init=_init_connection, reset=_keep_session)
                break
            except CONNECTION_ERRORS as error:
                if time.monotonic() >= give_up_at:
                    raise
                log.warning("database not reachable yet, retrying", extra={"error": repr(error)})
                await asyncio.sleep(0.5)
        db = cls(pool, connect_timeout_s=connect_timeout_s, command_timeout_s=command_timeout_s)
        try:
            async with db.connection() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        return db

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.pool.close(), timeout=5)
        except TimeoutError:
            self.pool.terminate()

    @asynccontextmanager
    async def connection(self, slot_wait_s: float | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection: first a slot (one per connection of the pool), then the connection itself.

        Waiting for a slot is waiting for our own other requests, so running out of ``slot_wait_s``
        (default: the connect timeout) is PoolExhausted (overload), whatever the pool looks like by the
        time the timeout is handled. Only after that does the database's part start: connecting (when
        the pool grows) and the block must finish within connect + command timeout, and a TimeoutError
        there does speak about the database. Giving the connection back never fails the block's work.
        """
        try:
            async with asyncio.timeout(self._connect_timeout_s if slot_wait_s is None else slot_wait_s):
                await self._slots.acquire()
        except TimeoutError:
            raise PoolExhausted("every database connection is busy") from None
        try:
            async with asyncio.timeout(self._deadline_s):
                acquired = await self.pool.acquire(timeout=self._connect_timeout_s)
                try:
                    yield acquired
                finally:
                    await self._give_back(acquired)
        finally:
            self._slots.release()

    async def _give_back(self, conn: asyncpg.Connection) -> None:
        """Release a connection. If its reset fails (say it timed out on a starved CPU), asyncpg has already
        dropped it and the pool opens another when needed: the work done on it stands, it is not an outage."""
        try:
            await self.pool.release(conn)
        except Exception as error:
            log.warning("dropped a database connection whose reset failed", extra={"error": repr(error)})

    async def ping(self) -> None:
        async with self.connection() as conn:
            await conn.fetchval("SELECT 1")

    # --- API queries -------------------------------------------------------------------------

    async def insert_generation(self, new: NewGeneration, max_unfinished: int | None = None,
                                max_unfinished_per_user: int | None = None) -> tuple[dict, bool]:
        """Insert, or return the user's existing generation with the same idempotency key.

        Returns (row, created). Race-safe: the unique index decides, ON CONFLICT never raises. With
        ``max_unfinished``, a new row is refused (Overloaded) once that many generations wait; with
        ``max_unfinished_per_user``, once the user has that many unfinished (UserLimitReached). The counts
        and the insert happen under one advisory lock, so concurrent requests cannot overshoot, inside one
        server-side call (migrations 0003, 0004), so the lock is never held across a round trip.
        """
        async with self.connection() as conn:
            try:
                row = await conn.fetchrow(
                    "SELECT * FROM admit_generation($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    max_unfinished, max_unfinished_per_user, ADMISSION_LOCK_ID, ADMISSION_LOCK_TIMEOUT, uuid.uuid4(),
                    new.user_id, new.model_id, new.prompt, new.negative_prompt, new.reference_image_url,
                    new.parameters, new.idempotency_key, new.request_fingerprint, new.traceparent)
            except asyncpg.LockNotAvailableError:  # a long wait for the admission lock means a crowd of POSTs
                raise Overloaded("too many generations being admitted at once") from None
            except asyncpg.RaiseError as error:  # the queue is full
                raise Overloaded(error.message) from None
            except asyncpg.PostgresError as error:
                if error.sqlstate == USER_LIMIT_SQLSTATE:
                    raise UserLimitReached(str(error)) from None
                raise
            if row is not None:
                return dict(row), True
            existing = await conn.fetchrow(
                "SELECT * FROM generations WHERE user_id = $1 AND idempotency_key = $2",
                new.user_id, new.idempotency_key)
            return dict(existing), False

    async def get_generation(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> dict | None:
        async with self.connection() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM generations WHERE id = $1 AND user_id = $2", generation_id, user_id)
        return dict(row) if row else None

    async def list_generations(self, user_id: uuid.UUID, limit: int, offset: int) -> tuple[list[dict], int]:
        """The user's generations, newest first, and how many they have in total."""
        async with self.connection() as conn:
            rows = await conn.fetch(
                "SELECT * FROM generations WHERE user_id = $1 ORDER BY created_at DESC, id DESC "
                "LIMIT $2 OFFSET $3", user_id, limit, offset)
            total = await conn.fetchval("SELECT count(*) FROM generations WHERE user_id = $1", user_id)
        return [dict(r) for r in rows], total

    async def count_unfinished(self, at_most: int) -> int:
        """Pending + processing generations, counting no further than `at_most` (stays cheap). It is the
        health check's query, so it never queues behind requests: with every slot taken it is PoolExhausted
        at once, rather than a wait that the check's own timeout would read as the database being down."""
        async with self.connection(slot_wait_s=0) as conn:
            return await conn.fetchval(_COUNT_UNFINISHED, at_most)

    # --- worker queries ----------------------------------------------------------------------

    async def claim(self, owner: str, how_many: int, lease_s: float,
                    busy: Collection[uuid.UUID] = ()) -> list[dict]:
        """Lease up to `how_many` runnable generations: pending ones, and processing ones whose lease expired,
        but none of ``busy``, the claimer's own work in progress (its lease may have lapsed while the database
        was away; claimed again, it would reach FAL a second time from the same process).

        SKIP LOCKED makes concurrent claimers (threads, replicas) take disjoint rows.
        """
        async with self.connection() as conn:
            rows = await conn.fetch(
                """WITH runnable AS (
                       SELECT id FROM generations
                       WHERE ((status = 'pending' AND available_at <= now())
                              OR (status = 'processing' AND lease_expires_at < now()))
                         AND NOT id = ANY($4::uuid[])
                       ORDER BY created_at
                       LIMIT $2
                       FOR UPDATE SKIP LOCKED)
                   UPDATE generations AS g
                   SET status = 'processing', lease_owner = $1,
                       lease_expires_at = now() + make_interval(secs => $3),
                       attempts = g.attempts + 1, started_at = coalesce(g.started_at, now()), updated_at = now()
                   FROM runnable WHERE g.id = runnable.id
                   RETURNING g.*""",
                owner, how_many, lease_s, list(busy))
        return [dict(r) for r in rows]

    async def renew_lease(self, generation_id: uuid.UUID, owner: str, lease_s: float) -> bool:
        """Extend our lease; False means we lost it (expired and claimed by someone else)."""
        async with self.connection() as conn:
            status = await conn.execute(
                "UPDATE generations SET lease_expires_at = now() + make_interval(secs => $3) "
                "WHERE id = $1 AND lease_owner = $2 AND status = 'processing'", generation_id, owner, lease_s)
        return status.endswith(" 1")

    async def save_fal_request_id(self, generation_id: uuid.UUID, owner: str, fal_request_id: str | None) -> bool:
        """Store the FAL request of a claimed generation; False when the lease is no longer this owner's."""
        async with self.connection() as conn:
            status = await conn.execute(
                "UPDATE generations SET fal_request_id = $3, updated_at = now() "
                "WHERE id = $1 AND lease_owner = $2", generation_id, owner, fal_request_id)
        return status == "UPDATE 1"

    async def complete(self, generation_id: uuid.UUID, owner: str, storage_path: str, image_url: str) -> bool:
        return await self._finish(generation_id, owner, "completed", storage_path=storage_path, image_url=image_url)

    async def fail(self, generation_id: uuid.UUID, owner: str, error: str, orphan_path: str | None = None) -> bool:
        """Fail a leased generation; ``orphan_path`` records an object it may have left, to be removed
        (see service/object_cleanup.py) in the same statement, so no crash can lose it."""
        return await self._finish(generation_id, owner, "failed", error=error, orphan_path=orphan_path)

    async def _finish(self, generation_id: uuid.UUID, owner: str, status: str, *, storage_path: str | None = None,
                      image_url: str | None = None, error: str | None = None, orphan_path: str | None = None) -> bool:
        async with self.connection() as conn:
            result = await conn.execute(
                """UPDATE generations SET status = $3, storage_path = $4, image_url = $5, error = $6,
                          orphan_path = $7,
                          lease_owner = NULL, lease_expires_at = NULL, completed_at = now(), updated_at = now()
                   WHERE id = $1 AND lease_owner = $2 AND status = 'processing'""",
                generation_id, owner, status, storage_path, image_url, error, orphan_path)
        return result.endswith(" 1")

    async def recorded_orphans(self, how_many: int, exclude: Collection[uuid.UUID] = ()) -> list[tuple[uuid.UUID, str]]:
        """Objects failed generations may have left, oldest first, except those being removed already."""
        async with self.connection() as conn:
            rows = await conn.fetch(
                """SELECT id, orphan_path FROM generations
                   WHERE orphan_path IS NOT NULL AND NOT id = ANY($2::uuid[])
                   ORDER BY completed_at LIMIT $1""", how_many, list(exclude))
        return [(r["id"], r["orphan_path"]) for r in rows]

    async def forget_orphan(self, generation_id: uuid.UUID, path: str) -> None:
        """Storage confirmed the removal of ``path``."""
        async with self.connection() as conn:
            await conn.execute("UPDATE generations SET orphan_path = NULL WHERE id = $1 AND orphan_path = $2",
                               generation_id, path)

    async def release(self, generation_id: uuid.UUID, owner: str, delay_s: float = 0.0) -> None:
        """Give a leased generation back to the queue (shutdown, or waiting for a breaker to close)."""
        async with self.connection() as conn:
            await conn.execute(
                """UPDATE generations SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                          available_at = now() + make_interval(secs => $3), updated_at = now()
                   WHERE id = $1 AND lease_owner = $2 AND status = 'processing'""",
                generation_id, owner, delay_s)
