"""The traffic driver: generation requests at an arrival rate or from concurrent clients, each with
a W3C ``traceparent``, every accepted generation followed to a terminal state or the deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable

import httpx

from chaos.observations import TERMINAL_STATUSES, RequestRecord
from chaos.scenarios.model import Load

GENERATIONS_PATH = "/api/v1/generations"
POLL_INTERVAL_S = 0.3
REQUEST_TIMEOUT_S = 10.0


def traceparent() -> tuple[str, str]:
    """A fresh sampled W3C trace context: (trace id, header value)."""
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def _detail(response: httpx.Response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else str(detail if detail is not None else body)[:200]


class TrafficDriver:
    """Sends the load of one scenario and records one RequestRecord per generation request."""

    def __init__(self, client: httpx.AsyncClient, tokens: list[str], load: Load, *,
                 started_at: float, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._tokens = itertools.cycle(tokens)
        self._load = load
        self._started_at = started_at
        self._clock = clock
        self._deadline = load.duration_s + load.drain_s
        self.records: list[RequestRecord] = []

    def _now(self) -> float:
        return self._clock() - self._started_at

    async def run(self) -> list[RequestRecord]:
        """Drive the load for its duration, then wait for generations until the drain deadline."""
        if self._load.rate_per_s is not None:
            await self._open_model(self._load.rate_per_s)
        else:
            await asyncio.gather(*(self._closed_client() for _ in range(self._load.clients or 0)))
        return self.records

    async def _open_model(self, rate_per_s: float) -> None:
        tasks = []
        for index in itertools.count():
            due = index / rate_per_s
            if due >= self._load.duration_s:
                break
            await asyncio.sleep(max(0.0, due - self._now()))
            tasks.append(asyncio.create_task(self._one_generation()))
        await asyncio.gather(*tasks)

    async def _closed_client(self) -> None:
        while self._now() < self._load.duration_s:
            await self._one_generation()
            await asyncio.sleep(self._load.think_s)

    async def _one_generation(self) -> None:
        token = next(self._tokens)
        record = await self._submit(token)
        self.records.append(record)
        if record.accepted:
            await self._follow(record, token)

    async def _submit(self, token: str) -> RequestRecord:
        trace_id, header = traceparent()
        sent = self._now()
        try:
            response = await self._client.post(
                GENERATIONS_PATH, json={"model_id": self._load.model_id, "prompt": f"chaos {trace_id[:8]}"},
                headers={"Authorization": f"Bearer {token}", "traceparent": header}, timeout=REQUEST_TIMEOUT_S)
        except httpx.HTTPError as exc:
            return RequestRecord(t=sent, status=None, latency_s=self._now() - sent, trace_id=trace_id,
                                 detail=f"{type(exc).__name__}: {exc}")
        body = response.json() if response.status_code == 202 else {}
        return RequestRecord(
            t=sent, status=response.status_code, latency_s=self._now() - sent, trace_id=trace_id,
            detail=_detail(response), retry_after=response.headers.get("retry-after"),
            reason_503=response.headers.get("x-genchaos-503-reason"), generation_id=body.get("id"))

    async def _follow(self, record: RequestRecord, token: str) -> None:
        """Poll the generation until it is terminal or the deadline passes (then it counts as lost)."""
        path = f"{GENERATIONS_PATH}/{record.generation_id}"
        while self._now() < self._deadline:
            try:
                response = await self._client.get(path, headers={"Authorization": f"Bearer {token}"},
                                                  timeout=REQUEST_TIMEOUT_S)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 200:
                body = response.json()
                if body.get("status") in TERMINAL_STATUSES:
                    record.final_status = body["status"]
                    record.terminal_t = self._now()
                    record.error = body.get("error")
                    return
            await asyncio.sleep(POLL_INTERVAL_S)
