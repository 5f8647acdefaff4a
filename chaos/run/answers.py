"""Every answer the service gave the harness's API calls (submits, replays, polls, probes), tallied
as it arrives: the 503s by the causes their sentence names, and the calls never answered. This is
what clients received, the ground truth the service's own 503 counter is compared with.
"""

from __future__ import annotations

import time
from collections import Counter

import httpx

from chaos.contract.model import Contract
from chaos.run.protocol import error_detail
from chaos.run.telemetry import sentence_group


class AnswerTally:
    """httpx event hooks that count, while ``counting``, API calls, their answers and the 503s by sentence.
    Calls to the service's own telemetry paths (readiness, metrics, health) are not API calls."""

    def __init__(self, contract: Contract) -> None:
        self._contract = contract
        telemetry = contract.telemetry
        self._not_api = {p for p in (contract.start.health_path, contract.features.readiness_path,
                                     telemetry.metrics_path, telemetry.timings and telemetry.timings.path,
                                     telemetry.breakers and telemetry.breakers.path) if p}
        self.counting = False
        self.calls = 0
        self.answers = 0
        self.server_errors = 0  # 5xx answers
        self.statuses: list[tuple[float, int]] = []  # (unix time, status) of every answer
        self.received_503: Counter[str] = Counter()

    @property
    def unanswered(self) -> int:
        return self.calls - self.answers

    @property
    def event_hooks(self) -> dict[str, list]:
        return {"request": [self._on_request], "response": [self._on_response]}

    def _is_api(self, url: httpx.URL) -> bool:
        return self.counting and url.path not in self._not_api

    async def _on_request(self, request: httpx.Request) -> None:
        if self._is_api(request.url):
            self.calls += 1

    async def _on_response(self, response: httpx.Response) -> None:
        if not self._is_api(response.request.url):
            return
        self.answers += 1
        self.server_errors += response.status_code >= 500
        self.statuses.append((time.time(), response.status_code))
        if response.status_code == 503:
            await response.aread()
            self.received_503[sentence_group(self._contract, error_detail(response))] += 1
