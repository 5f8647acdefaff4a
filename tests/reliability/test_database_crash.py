"""PostgreSQL killed under load: the service answers the database's own 503 with Retry-After while it
is down, and serves again once it is back, without being restarted; nothing accepted is lost."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import httpx
import psutil
import pytest

from chaos.stack.embedded import EmbeddedStack
from tests.reliability.observe import wait_for
from tests.support import auth_headers, wait_terminal

DATABASE_DOWN = "Database service temporarily unavailable. Please try again later."
OUTAGE_S = 3.0


@dataclass
class Answer:
    sent_at: float
    status: int
    detail: str | None
    retry_after: str | None
    reason: str | None
    generation_id: str | None


class SteadyLoad:
    """POSTs generations one after another from a thread and records every answer."""

    def __init__(self, service_url: str, headers: dict[str, str]) -> None:
        self._url = f"{service_url}/api/v1/generations"
        self._headers = headers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-load")
        self.answers: list[Answer] = []

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(timeout=15) as client:
            while not self._stop.is_set():
                sent_at = time.time()
                try:
                    response = client.post(self._url, headers=self._headers,
                                           json={"model_id": "fal-ai/flux/dev", "prompt": "database crash"})
                except httpx.HTTPError as error:  # a hang or a dropped connection: recorded as status 0
                    self.answers.append(Answer(sent_at, 0, repr(error), None, None, None))
                    continue
                body = response.json() if response.headers.get("content-type") == "application/json" else {}
                self.answers.append(Answer(
                    sent_at, response.status_code, body.get("detail"), response.headers.get("retry-after"),
                    response.headers.get("x-genchaos-503-reason"), body.get("id") if response.status_code == 202 else None))
                self._stop.wait(0.1)

    def since(self, t: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.sent_at >= t]


@pytest.mark.slow
def test_database_crash_gives_its_503_then_recovers_without_a_service_restart(
        stack: EmbeddedStack, restore_service, empty_queue):
    info = stack.info
    service_pid = info.service_pid
    headers = auth_headers(info, str(uuid.uuid4()))

    with SteadyLoad(info.service_url, headers) as load:
        wait_for(lambda: any(a.status == 202 for a in load.answers), timeout_s=10, what="a first accepted generation")
        stack.postgres.kill()
        killed_at = time.time()
        wait_for(lambda: any(a.status == 503 for a in load.since(killed_at)), timeout_s=20,
                 what="a 503 after the database was killed")
        time.sleep(OUTAGE_S)
        stack.postgres.restart()
        restarted_at = time.time()
        wait_for(lambda: any(a.status == 202 for a in load.since(restarted_at)), timeout_s=30,
                 what="an accepted generation after the database came back")

    answers = load.answers
    assert [a for a in answers if a.status not in (202, 503)] == [], "only 202s and 503s are expected"
    outage = [a for a in answers if killed_at <= a.sent_at < restarted_at and a.status == 503]
    assert outage, "no 503 while the database was down"
    assert {(a.detail, a.reason) for a in outage} == {(DATABASE_DOWN, "database_unavailable")}
    assert all(a.retry_after and a.retry_after.isdigit() and int(a.retry_after) >= 1 for a in outage)
    assert stack.info.service_pid == service_pid and psutil.pid_exists(service_pid), "the service was restarted"
    print(f"\ndatabase outage: {len(outage)} requests answered 503 database_unavailable; "
          f"first 202 {next(a.sent_at for a in answers if a.sent_at >= restarted_at and a.status == 202) - restarted_at:.1f} s "
          "after restart")

    accepted = [a.generation_id for a in answers if a.status == 202]
    finished = [wait_terminal(info, headers, generation_id, timeout_s=60) for generation_id in accepted]
    assert [g["status"] for g in finished] == ["completed"] * len(accepted)
