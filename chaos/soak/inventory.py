"""Reads of what the stack holds, from outside the service and through nothing but its contract: the
generations the load generator was given a 202 for, how each ended as its owner reads it through the
contract's API, the objects in the storage emulator (in every bucket: a contract names none), and FAL's
request log, gathered as the soak goes because the emulator keeps only its latest entries.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from chaos.contract.model import Contract
from chaos.run.observations import RequestRecord
from chaos.run.protocol import GenerationProtocol
from chaos.soak.ledger import GONE, JOB_KINDS, Outcome
from chaos.stack.embedded import StackInfo
from chaos.stack.faults import FalEmulatorControl
from chaos.stack.keepalive import pool_limits
from chaos.stack.tokens import mint_access_token

LIST_PAGE = 10_000
READ_CONCURRENCY = 8
READ_TIMEOUT_S = 10.0
READ_AGAIN_AFTER_S = 1.0
# Where Supabase Storage serves an object: /storage/v1/object/{sign|public|authenticated}/<bucket>/<key>
STORAGE_OBJECT_PATH = re.compile(r"/storage/v1/object/(?:sign|public|authenticated)/([^/]+)/(.+)")


@dataclass(frozen=True)
class Accepted:
    """A generation the service answered 202 for."""

    generation_id: str
    trace_id: str  # the marker its prompt carried, which FAL's log shows
    user_id: str  # its owner, whose token reads it back


def accepted_generations(path: Path) -> list[Accepted]:
    """Every generation the load generator was given a 202 for, once each, in order, from the JSON-lines
    file loadtests/accepted_log.py writes."""
    if not path.exists():
        return []
    found: dict[str, Accepted] = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
            accepted = Accepted(str(entry["id"]), entry["trace_id"], entry["user_id"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short when Locust was stopped
        found.setdefault(accepted.generation_id, accepted)
    return list(found.values())


def storage_object(url: str | None) -> str | None:
    """The "bucket/key" a Supabase Storage URL (signed, public or authenticated) serves; None for any other URL."""
    match = STORAGE_OBJECT_PATH.fullmatch(urlsplit(url).path) if url else None
    return f"{unquote(match[1])}/{unquote(match[2])}" if match else None


async def _read(client: httpx.AsyncClient, api: GenerationProtocol, token: str, generation: Accepted) -> Outcome | None:
    """One read of a generation by its owner: how it ended, or None while it has not (or the read failed)."""
    try:
        response = await client.get(api.generation_path(generation.generation_id), timeout=READ_TIMEOUT_S,
                                    headers=api.headers(token, generation.trace_id))
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    if response.status_code == 404:
        return Outcome(GONE)
    record = RequestRecord(t=0.0, status=None, latency_s=0.0, trace_id=generation.trace_id,
                           generation_id=generation.generation_id)
    if body is None or not api.record_terminal(record, body, time.time()):
        return None
    return Outcome(record.final_status, record.error, record.image_url, storage_object(record.image_url))


async def _read_until_settled(info: StackInfo, contract: Contract, accepted: list[Accepted],
                              timeout_s: float) -> dict[str, Outcome]:
    api = GenerationProtocol(contract)
    tokens: dict[str, str] = {}
    outcomes: dict[str, Outcome] = {}
    limit = asyncio.Semaphore(READ_CONCURRENCY)
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=info.service_url, limits=pool_limits()) as client:

        async def read(generation: Accepted) -> None:
            if generation.user_id not in tokens:
                tokens[generation.user_id] = mint_access_token(info.jwt_secret, info.jwt_issuer, sub=generation.user_id)
            async with limit:
                outcome = await _read(client, api, tokens[generation.user_id], generation)
            if outcome is not None:
                outcomes[generation.generation_id] = outcome

        pending = list(accepted)
        while True:
            await asyncio.gather(*(read(g) for g in pending))
            pending = [g for g in pending if g.generation_id not in outcomes]
            if not pending or time.monotonic() + READ_AGAIN_AFTER_S >= deadline:
                return outcomes
            await asyncio.sleep(READ_AGAIN_AFTER_S)


def read_outcomes(info: StackInfo, contract: Contract, accepted: list[Accepted],
                  timeout_s: float) -> tuple[dict[str, Outcome], float]:
    """Read every accepted generation through the contract's API as its owner, again and again while the
    queue drains, until each has ended (or is gone) or ``timeout_s`` has passed; what was read (generations
    never seen ended are missing) and the seconds it took."""
    started = time.monotonic()
    outcomes = asyncio.run(_read_until_settled(info, contract, accepted, timeout_s))
    return outcomes, time.monotonic() - started


def _objects_in(client: httpx.Client, bucket: str) -> set[str]:
    """Every object key in one bucket, listed folder by folder."""
    found: set[str] = set()
    folders = [""]
    while folders:
        prefix = folders.pop()
        offset = 0
        while True:
            response = client.post(f"/object/list/{bucket}", json={"prefix": prefix, "limit": LIST_PAGE, "offset": offset})
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


def stored_objects(info: StackInfo) -> set[str]:
    """Every object in the storage emulator as "bucket/key", listed through the storage API with the
    service key; httpx.HTTPError when it cannot be listed."""
    auth = {"apikey": info.service_key, "Authorization": f"Bearer {info.service_key}"}
    with httpx.Client(base_url=f"{info.storage_admin_url}/storage/v1", headers=auth, timeout=30) as client:
        buckets = client.get("/bucket")
        buckets.raise_for_status()
        return {f"{bucket['id']}/{key}" for bucket in buckets.json() for key in _objects_in(client, bucket["id"])}


def settled_objects(info: StackInfo, owned: set[str], settle_s: float) -> set[str]:
    """The stored objects once the service had ``settle_s`` to remove those no completed generation owns
    (a failed generation's object may be removed in the background, by the next process if one was killed)."""
    deadline = time.monotonic() + settle_s
    stored = stored_objects(info)
    while stored - owned and time.monotonic() < deadline:
        time.sleep(1.0)
        stored = stored_objects(info)
    return stored


class FalLogHarvest:
    """The FAL entries the accounting needs, kept across reads of the emulator's bounded log: every job
    and cancel, every status call FAL answered 404 (it had forgotten the request), and the first poll
    of each request (a request the service polled had been stored)."""

    def __init__(self, fal: FalEmulatorControl) -> None:
        self._fal = fal
        self._entries: dict[tuple, dict[str, Any]] = {}
        self._first_polls: dict[str, dict[str, Any]] = {}

    def collect(self) -> None:
        for entry in self._fal.requests():
            kind, request_id = entry.get("kind"), entry.get("request_id")
            if kind in (*JOB_KINDS, "cancel") or (kind == "status" and int(entry.get("status") or 0) == 404):
                self._entries[(entry["t"], kind, entry.get("path"), request_id, entry.get("status"))] = entry
            elif kind in ("status", "result") and request_id:
                first = self._first_polls.get(request_id)
                if first is None or entry["t"] < first["t"]:
                    self._first_polls[request_id] = entry

    @property
    def entries(self) -> list[dict[str, Any]]:
        return sorted([*self._entries.values(), *self._first_polls.values()], key=lambda e: e["t"])
