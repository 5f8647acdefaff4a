"""Reads of what the stack holds, from outside the service: the ids the load generator was given a
202 for, the generation rows straight from PostgreSQL, the objects in the storage emulator, and
FAL's request log, gathered as the soak goes because the emulator keeps only its latest entries.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from chaos.soak.ledger import Row, owned_objects
from chaos.stack.embedded import StackInfo
from chaos.stack.faults import FalEmulatorControl

BUCKET = "generations"  # the service's default GENCHAOS_STORAGE_BUCKET
LIST_PAGE = 10_000
QUERY_TIMEOUT_S = 30.0


def accepted_ids(path: Path) -> list[str]:
    """The generation ids of every 202, in order, from the load generator's JSON-lines file."""
    if not path.exists():
        return []
    ids = []
    for line in path.read_text().splitlines():
        try:
            ids.append(json.loads(line)["id"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short when Locust was stopped
    return ids


def _fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn, timeout=QUERY_TIMEOUT_S)
        try:
            return await conn.fetch(sql, timeout=QUERY_TIMEOUT_S)
        finally:
            await conn.close()

    return asyncio.run(fetch())


def generation_rows(dsn: str) -> dict[str, Row]:
    """Every generation row by id."""
    return {str(r["id"]): Row(r["status"], r["error"], r["storage_path"])
            for r in _fetch(dsn, "SELECT id, status, error, storage_path FROM generations")}


def unfinished(dsn: str) -> int:
    return _fetch(dsn, "SELECT count(*) AS n FROM generations WHERE status IN ('pending', 'processing')")[0]["n"]


def wait_for_drain(dsn: str, timeout_s: float) -> float:
    """Wait until no generation is pending or processing, or ``timeout_s``; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if unfinished(dsn) == 0:
                break
        except (OSError, asyncpg.PostgresError, TimeoutError):
            pass  # the database is still recovering from its last kill
        time.sleep(1.0)
    return time.monotonic() - started


def stored_objects(info: StackInfo) -> set[str]:
    """Every object key in the service's bucket, listed folder by folder through the storage API."""
    key = {"apikey": info.service_key, "Authorization": f"Bearer {info.service_key}"}
    found: set[str] = set()
    with httpx.Client(base_url=f"{info.storage_admin_url}/storage/v1", headers=key, timeout=30) as client:
        folders = [""]
        while folders:
            prefix = folders.pop()
            offset = 0
            while True:
                response = client.post(f"/object/list/{BUCKET}",
                                       json={"prefix": prefix, "limit": LIST_PAGE, "offset": offset})
                response.raise_for_status()
                entries = response.json()
                for entry in entries:
                    path = f"{prefix}/{entry['name']}" if prefix else entry["name"]
                    if entry["id"] is None:
                        folders.append(path)
                    else:
                        found.add(path)
                if len(entries) < LIST_PAGE:
                    break
                offset += LIST_PAGE
    return found


def settled_objects(info: StackInfo, rows: dict[str, Row], settle_s: float) -> set[str]:
    """The stored objects once the service had ``settle_s`` to remove those no completed generation owns
    (a failed generation's object is removed in the background, by the next process if one was killed)."""
    owned = owned_objects(rows)
    deadline = time.monotonic() + settle_s
    stored = stored_objects(info)
    while stored - owned and time.monotonic() < deadline:
        time.sleep(1.0)
        stored = stored_objects(info)
    return stored


def _needed(entry: dict[str, Any]) -> bool:
    """What the accounting reads: submits, cancels, and the status calls of requests FAL forgot (404)."""
    kind = entry.get("kind")
    return kind in ("submit", "cancel") or (kind == "status" and int(entry.get("status") or 0) == 404)


class FalLogHarvest:
    """The FAL entries the accounting needs, kept across reads of the emulator's bounded log."""

    def __init__(self, fal: FalEmulatorControl) -> None:
        self._fal = fal
        self._entries: dict[tuple, dict[str, Any]] = {}

    def collect(self) -> None:
        for entry in self._fal.requests():
            if _needed(entry):
                key = (entry["t"], entry.get("kind"), entry.get("path"), entry.get("request_id"), entry.get("status"))
                self._entries[key] = entry

    @property
    def entries(self) -> list[dict[str, Any]]:
        return sorted(self._entries.values(), key=lambda e: e["t"])
