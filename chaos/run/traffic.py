"""The traffic driver: generation requests at an arrival rate or from concurrent clients, each with
a W3C ``traceparent``, every accepted generation followed to a terminal state or the deadline. What
is sent and how answers are recorded is the generation protocol (chaos/run/protocol.py),
shared with the Locust users.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable

import httpx

from chaos.run import protocol
from chaos.run.observations import RequestRecord
from chaos.run.protocol import GenerationProtocol
from chaos.scenarios.model import Load

POLL_INTERVAL_S = 0.3
REQUEST_TIMEOUT_S = 10.0


class TrafficDriver:
    """Sends the load of one scenario and records one RequestRecord per generation request."""

    def __init__(self, client: httpx.AsyncClient, api: GenerationProtocol, tokens: list[str], load: Load, *,
                 started_at: float, clock: Callable[[], float] = time.time, flood_token: str | None = None) -> None:
        self._client = client
        self._api = api
        self._tokens = itertools.cycle(tokens)
        self._flood_token = flood_token
        self._load = load
        self._started_at = started_at
        self._clock = clock
        self._deadline = load.duration_s + load.drain_s
        self._sequence = itertools.count()
        self.records: list[RequestRecord] = []
        self.flood_records: list[RequestRecord] = []

    def _now(self) -> float:
        return self._clock() - self._started_at

    async def run(self) -> list[RequestRecord]:
        """Drive the load (and the flood, if any) for its duration, then wait for generations until the
        drain deadline."""
        if self._load.rate_per_s is not None:
            load = self._open_model(self._load.rate_per_s, self._one_generation)
        else:
            load = asyncio.gather(*(self._closed_client() for _ in range(self._load.clients or 0)))
        flood = self._load.flood_rate_per_s
        await asyncio.gather(load, *([self._open_model(flood, self._one_flood_request)] if flood else []))
        return self.records

    async def _open_model(self, rate_per_s: float, send: Callable[[], Awaitable[None]]) -> None:
        tasks = []
        for index in itertools.count():
            due = index / rate_per_s
            if due >= self._load.duration_s:
                break
            await asyncio.sleep(max(0.0, due - self._now()))
            tasks.append(asyncio.create_task(send()))
        await asyncio.gather(*tasks)

    async def _one_flood_request(self) -> None:
        """The flooding user only submits: what matters is how the service answers it, and what it leaves
        for everyone else."""
        assert self._flood_token is not None
        trace_id = protocol.new_trace_id()
        body = self._api.request_body(trace_id, self._load.model_id)
        self.flood_records.append(await self._submit(body, self._flood_token, trace_id, idempotent=False))

    async def _closed_client(self) -> None:
        while self._now() < self._load.duration_s:
            await self._one_generation()
            await asyncio.sleep(self._load.think_s)

    async def _one_generation(self) -> None:
        token = next(self._tokens)
        trace_id = protocol.new_trace_id()
        body = self._api.request_body(trace_id, self._load.model_id)
        idempotent = self._api.replays(next(self._sequence))
        record = await self._submit(body, token, trace_id, idempotent)
        self.records.append(record)
        if record.accepted:
            if idempotent:
                record.replay_ok = await self._replay(body, token, trace_id, record.generation_id)
            await self._follow(record, token)

    async def _post(self, body: dict, token: str, trace_id: str, idempotent: bool) -> httpx.Response:
        return await self._client.post(self._api.submit_path, json=body, timeout=REQUEST_TIMEOUT_S,
                                       headers=self._api.headers(token, trace_id, idempotent=idempotent))

    async def _replay(self, body: dict, token: str, trace_id: str, generation_id: str) -> bool | None:
        """Send an accepted POST again with its Idempotency-Key: the same generation must come back."""
        try:
            response = await self._post(body, token, trace_id, idempotent=True)
        except httpx.HTTPError:
            response = None
        return self._api.replay_verdict(response, generation_id)

    async def _submit(self, body: dict, token: str, trace_id: str, idempotent: bool) -> RequestRecord:
        record = RequestRecord(t=self._now(), status=None, latency_s=0.0, trace_id=trace_id)
        try:
            response = await self._post(body, token, trace_id, idempotent)
        except httpx.HTTPError as exc:
            record.detail = f"{type(exc).__name__}: {exc}"
        else:
            self._api.record_submission(record, response)
        record.latency_s = self._now() - record.t
        return record

    async def _follow(self, record: RequestRecord, token: str) -> None:
        """Poll the generation until it is terminal or the deadline passes (then it counts as lost)."""
        path = self._api.generation_path(record.generation_id)
        while self._now() < self._deadline:
            try:
                response = await self._client.get(path, headers=self._api.headers(token, record.trace_id),
                                                  timeout=REQUEST_TIMEOUT_S)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 200 and \
                    self._api.record_terminal(record, response.json(), self._now()):
                return
            await asyncio.sleep(POLL_INTERVAL_S)
