"""What the reliability tests look at from outside the service: the database rows, the objects in
the storage emulator, the FAL emulator's log of submissions, and the processes a run left."""

from __future__ import annotations

import asyncio
import collections
import os
import time
from pathlib import Path

import asyncpg
import httpx
import psutil

from chaos.stack.embedded import StackInfo
from chaos.stack.faults import FalEmulatorControl

STORAGE_BUCKET = "generations"


def query_database(dsn: str, sql: str, *args) -> list[dict]:
    """Rows of one query, run on a fresh connection straight to PostgreSQL (not through the proxy)."""

    async def fetch() -> list[dict]:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return [dict(row) for row in await conn.fetch(sql, *args, timeout=10)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def stored_objects(info: StackInfo, user_id: str) -> set[str]:
    """Keys of every object in the service's bucket under one user's folder, listed through the storage
    emulator's REST API with the service key."""
    key = {"apikey": info.service_key, "Authorization": f"Bearer {info.service_key}"}
    response = httpx.post(f"{info.storage_admin_url}/storage/v1/object/list/{STORAGE_BUCKET}", headers=key,
                          json={"prefix": user_id, "limit": 10_000}, timeout=10)
    response.raise_for_status()
    return {f"{user_id}/{entry['name']}" for entry in response.json() if entry["id"] is not None}


def fal_submissions(fal: FalEmulatorControl, generation_ids: list[str]) -> collections.Counter:
    """How many times FAL received a submit for each of ``generation_ids`` (0 included)."""
    counts = collections.Counter({generation_id: 0 for generation_id in generation_ids})
    counts.update(entry["generation_id"] for entry in fal.requests()
                  if entry["kind"] == "submit" and entry.get("generation_id") in counts)
    return counts


def wait_for(condition, *, timeout_s: float, what: str, interval_s: float = 0.1):
    """Poll ``condition`` until it returns something truthy, which is returned; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"{what} did not happen within {timeout_s} s")


def list_generations(info: StackInfo, headers: dict[str, str]) -> list[dict]:
    """Every generation of the user of ``headers``, through the API."""
    response = httpx.get(f"{info.service_url}/api/v1/generations", params={"limit": 100}, headers=headers, timeout=10)
    response.raise_for_status()
    page = response.json()
    assert page["total"] <= 100, "more generations than one page; the test made too many"
    return page["items"]


def is_alive(process: psutil.Process) -> bool:
    """Running and not a zombie (a zombie has stopped; only its parent has not reaped it yet)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def processes_of(tmp_root: Path, pid: int | None = None) -> list[psutil.Process]:
    """The live processes of a run whose private TMPDIR is ``tmp_root``: ``pid``'s descendants, and any
    process whose command line or environment names ``tmp_root`` (pg_ctl daemonizes the PostgreSQL
    server, so it is nobody's child)."""
    found: dict[int, psutil.Process] = {}
    if pid is not None:
        try:
            found = {p.pid: p for p in psutil.Process(pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass
    for process in psutil.process_iter(["cmdline", "environ"]):
        try:
            named = str(tmp_root) in " ".join(process.info["cmdline"] or [])
            inherited = (process.info["environ"] or {}).get("TMPDIR") == str(tmp_root)
        except psutil.Error:
            continue
        if (named or inherited) and process.pid not in (os.getpid(), pid):
            found[process.pid] = process
    return [p for p in found.values() if is_alive(p)]
