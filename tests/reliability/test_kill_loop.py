"""kill -9 of the service at seeded random points of the pipeline, many times over.

Each round submits a few generations, lets the pipeline run for a random while (FAL pace and a slow
storage proxy vary per round, so kills land while submitting, polling, downloading, uploading or
finishing), then kills the service and starts a new one. After the last restart every accepted
generation must complete, none may have been submitted to FAL twice, and every stored object must
belong to a completed generation. Submissions are counted as the soak counts them
(`chaos.soak.ledger`): a second submit that a documented retry explains (an attempt that timed out
and was cancelled) or that followed a submit FAL got just before a kill (the service died before it
could store the id) is reported, not counted as twice.
"""

from __future__ import annotations

import collections
import contextlib
import random
import time
import uuid

import pytest

from chaos.soak.ledger import Ledger, count_submissions
from chaos.stack.embedded import EmbeddedStack
from chaos.stack.faults import EmulatorControl, FalEmulatorControl, FaultController
from tests.reliability.observe import fal_submissions, list_generations, stored_objects
from tests.support import auth_headers, submit, wait_terminal

SEED = 1729
KILLS = 8
PER_ROUND = 3
# The loop itself takes longer than the fast preset's 20 s generation deadline; a generation that
# outlives it fails by design, which is not what this test is about.
LOOP_SETTINGS = {"GENCHAOS_GENERATION_DEADLINE_S": "180"}
# The step a generation is in after the last upstream call the emulators saw before the kill.
NEXT_STEP = {"submit": "polling FAL", "status": "polling FAL", "result": "downloading the image",
             "file": "uploading", "upload": "signing / database update", "sign": "database update"}


def step_at_kill(killed_at: float, round_started: float, fal: FalEmulatorControl, storage: EmulatorControl) -> str:
    """Where the pipeline was when the kill landed, judged by the last upstream call before it."""
    calls = [entry for entry in fal.requests() + storage.requests()
             if round_started <= entry["t"] <= killed_at and entry["kind"] in NEXT_STEP]
    if not calls:
        return "claiming / submitting to FAL"
    return NEXT_STEP[max(calls, key=lambda entry: entry["t"])["kind"]]


@pytest.mark.slow
def test_repeated_kill_9_loses_nothing_and_submits_nothing_twice(
        stack: EmbeddedStack, fal_control: FalEmulatorControl, storage_control: EmulatorControl,
        faults: FaultController, restore_service, empty_queue):
    rng = random.Random(SEED)
    stack.restart_service(env=LOOP_SETTINGS)
    user_id = str(uuid.uuid4())
    headers = auth_headers(stack.info, user_id)
    accepted: list[str] = []
    steps: collections.Counter = collections.Counter()
    kills: list[tuple[float, str]] = []

    for round_number in range(KILLS):
        fal_control.set_behaviour(queue_time_s=round(rng.uniform(0.05, 0.8), 2),
                                  processing_time_s=round(rng.uniform(0.1, 1.2), 2),
                                  latency_s=rng.choice([0.0, 0.0, 0.3]))
        slow_storage = rng.random() < 0.4
        round_started = time.time()
        with (faults.toxic("storage", "latency", attributes={"latency": 400}) if slow_storage
              else contextlib.nullcontext()):
            for i in range(PER_ROUND):
                response = submit(stack.info, headers, prompt=f"kill loop round {round_number} #{i}")
                assert response.status_code == 202, response.text
                accepted.append(response.json()["id"])
            time.sleep(rng.uniform(0.1, 2.5))
            killed_at = time.time()
            kills.append((killed_at, "service"))
            stack.kill_service()
        steps[step_at_kill(killed_at, round_started, fal_control, storage_control)] += 1
        stack.start_service()
    fal_control.set_behaviour(queue_time_s=0.05, processing_time_s=0.1, latency_s=0.0)  # keeps the log

    finished = {generation_id: wait_terminal(stack.info, headers, generation_id, timeout_s=90)
                for generation_id in accepted}
    print(f"\n{KILLS} kills; pipeline step at each kill: {dict(steps)}")

    assert {g: body["status"] for g, body in finished.items() if body["status"] != "completed"} == {}
    assert sorted(g["id"] for g in list_generations(stack.info, headers)) == sorted(accepted), \
        "the user's generation list differs from what was accepted"
    assert [g for g, n in fal_submissions(fal_control, accepted).items() if n == 0] == [], "never submitted"
    ledger = Ledger()
    ours = [e for e in fal_control.requests() if e["kind"] != "submit" or e.get("generation_id") in set(accepted)]
    count_submissions(ledger, ours, [], kills)
    print(f"resubmitted: {ledger.documented_resubmissions} documented, "
          f"{ledger.resubmitted_after_kill_mid_submit} after a kill mid-submit")
    assert ledger.submitted_twice == 0, ledger.examples
    stored = stored_objects(stack.info, user_id)
    completed_paths = {body["storage_path"] for body in finished.values()}
    assert stored - completed_paths == set(), "objects in storage that no completed generation owns"
    assert completed_paths - stored == set(), "completed generations whose image is not in storage"
