"""Live dependency checks per request, from the storage emulator's log: a service that checks storage on
every request shows about one read of the bucket per request beyond its health monitor's own."""

from __future__ import annotations

from chaos.judge.measures import run_metrics
from tests.unit.judge_support import completed, observation

BUCKET = "/storage/v1/bucket/genchaos-images"


def bucket_read(t: float, path: str = BUCKET, method: str = "GET") -> dict:
    return {"t": t, "method": method, "path": path, "status": 200, "kind": "bucket", "request_id": None}


def live_checks(reads: list[dict], requests: int = 100, interval_s: float | None = 0.5) -> float | None:
    obs = observation([completed(i * 0.2) for i in range(requests)])  # a 20 s load
    obs.storage_log = reads
    obs.timings = {} if interval_s is None else {"health_refresh_interval_s": interval_s}
    return run_metrics(obs)["live_checks_per_request"]


MONITOR = [bucket_read(0.5 * i) for i in range(40)]  # one read per 0.5 s interval over the load


def test_a_cached_health_reads_storage_only_on_its_interval():
    assert live_checks(MONITOR) == 0.0


def test_checking_storage_on_every_request_shows_one_read_per_request():
    per_request = [bucket_read(i * 0.2 + 0.01) for i in range(100)]
    assert live_checks(MONITOR + per_request) == 1.0


def test_only_reads_of_the_bucket_during_the_load_count():
    others = [bucket_read(1.0, path="/storage/v1/bucket"),  # listing the buckets
              bucket_read(1.0, path=f"{BUCKET}/empty", method="POST"),
              *(bucket_read(25.0 + i) for i in range(100))]  # after the load
    assert live_checks(MONITOR + others) == 0.0


def test_without_a_published_interval_requests_or_storage_log_nothing_is_judged():
    assert live_checks(MONITOR, interval_s=None) is None
    assert live_checks(MONITOR, requests=0) is None
    assert live_checks([]) is None  # a stack whose storage log the harness cannot read
