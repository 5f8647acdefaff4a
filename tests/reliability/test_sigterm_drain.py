"""SIGTERM drains the service: a slow request in flight still gets its answer, and generations it
cannot finish within the grace period are given back to the queue (no lease left to a dead process),
then finished by the next process without a second FAL submission."""

from __future__ import annotations

import concurrent.futures
import uuid

import httpx
import psutil
import pytest

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.faults import FalEmulatorControl, FaultController
from tests.reliability.observe import fal_submissions, query_database, wait_for
from tests.support import auth_headers, submit, wait_terminal

GENERATIONS = 3
FAL_PROCESSING_S = 6.0  # longer than the fast preset's 3 s shutdown grace: the work cannot finish in time
# ... but within the attempt timeout: a timed-out attempt rightly gives its request up, a drained one must not.
ATTEMPT_TIMEOUT_S = "20"
DATABASE_LATENCY_MS = 300  # one list request takes under a second: slow, but well within every timeout


@pytest.mark.slow
def test_sigterm_answers_inflight_requests_and_releases_leases(
        stack: EmbeddedStack, fal_control: FalEmulatorControl, faults: FaultController, restore_service,
        empty_queue):
    info = stack.restart_service(env={"GENCHAOS_FAL_ATTEMPT_TIMEOUT_S": ATTEMPT_TIMEOUT_S})
    fal_control.set_behaviour(processing_time_s=FAL_PROCESSING_S)
    headers = auth_headers(info, str(uuid.uuid4()))
    ids = []
    for i in range(GENERATIONS):
        response = submit(info, headers, prompt=f"drain {i}")
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    wait_for(lambda: all(fal_submissions(fal_control, ids).values()), timeout_s=15,
             what="every generation being submitted to FAL")
    dead_pid = info.service_pid

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        with faults.toxic("postgres", "latency", attributes={"latency": DATABASE_LATENCY_MS}):
            slow = pool.submit(httpx.get, f"{info.service_url}/api/v1/generations", headers=headers, timeout=30)
            wait_for(lambda: _has_open_connection(info.service_pid), timeout_s=5, what="the slow request arriving")
            stopping = pool.submit(stack.stop_service)
            answer = slow.result(timeout=30)
        stopping.result(timeout=30)

    assert answer.status_code == 200, answer.text
    assert answer.json()["total"] == GENERATIONS
    rows = query_database(info.database_direct_url,
                          "SELECT id::text, status, lease_owner FROM generations WHERE id = any($1::uuid[])", ids)
    assert len(rows) == GENERATIONS
    held = [row for row in rows if row["status"] == "processing" or row["lease_owner"]]
    assert held == [], f"leases left behind by the stopped process {dead_pid}: {held}"
    assert {row["status"] for row in rows} == {"pending"}, "work longer than the grace period is given back"

    stack.start_service()
    finished = [wait_terminal(stack.info, headers, generation_id, timeout_s=60) for generation_id in ids]
    assert [g["status"] for g in finished] == ["completed"] * GENERATIONS
    assert set(fal_submissions(fal_control, ids).values()) == {1}, "the next process resubmitted released work"


def _has_open_connection(pid: int) -> bool:
    """The service holds an established client connection (the slow request is being served)."""
    listening = {c.laddr.port for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    return any(c.status == psutil.CONN_ESTABLISHED and c.laddr.port in listening
               for c in psutil.Process(pid).net_connections("tcp"))
