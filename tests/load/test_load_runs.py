"""Locust against the embedded stack: the gate, a FAL outage under load, a flooding user, distributed
totals, and fault rollback on an interrupted run. Each run is a few seconds of load by a few users."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.faults import FalEmulatorControl, FaultController
from chaos.stack.processes import free_port
from tests.load.helpers import (
    LOCUSTFILE,
    assert_no_faults_left,
    finish,
    genchaos_load,
    http_api_requests,
    peak_users,
    run_load,
    write_scenario,
)

pytestmark = [pytest.mark.load, pytest.mark.slow]

# generous (the machine may be busy with other work), and decidable on the ~20 requests of a short run:
# rates are judged on their 95% Wilson interval, and 20 of 20 only shows a rate above 0.84
STEADY_CHECKS = [
    {"metric": "success_rate", "min": 0.75},
    {"metric": "rate_503", "max": 0.25},
    {"metric": "lost_generations", "max": 0},
    {"metric": "latency_p95_s", "max": 10},
]


def test_short_headless_run_passes_its_gate_and_writes_reports(stack_file: Path, tmp_path: Path):
    scenario = write_scenario(tmp_path, "steady", load={"clients": 3, "duration_s": 5, "think_s": 0.2},
                              checks=STEADY_CHECKS)
    result = run_load(stack_file, tmp_path / "out", "--scenario-file", str(scenario))

    assert result.returncode == 0, result.output[-3000:]
    summary = result.summary
    assert summary["verdict"] == "pass"
    assert all(check["passed"] for check in summary["checks"])
    assert summary["metrics"]["requests"] >= 5
    # the GENERATION request type sits in Locust's own statistics beside the HTTP calls
    assert summary["locust"]["generations"] == summary["metrics"]["requests"]
    with (result.out / "locust_stats.csv").open() as stats:
        rows = {(row["Type"], row["Name"]): row for row in csv.DictReader(stats)}
    assert int(rows[("GENERATION", "generation")]["Request Count"]) == summary["metrics"]["requests"]
    assert int(rows[("POST", "/api/v1/generations")]["Request Count"]) == summary["metrics"]["requests"]
    assert ("GET", "/api/v1/generations/[id]") in rows
    assert peak_users(result.out) == 3  # the scenario's clients, and no flooding user: this load does not flood
    # every 4th generation of a user is sent again with its Idempotency-Key, and the same one came back
    replays = rows[("POST", "/api/v1/generations (replay)")]
    assert 1 <= int(replays["Request Count"]) <= summary["metrics"]["requests"] // 4
    assert int(replays["Failure Count"]) == 0 and summary["metrics"]["idempotency_violations"] == 0
    assert (result.out / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    assert "SLO gate: PASS" in result.output


def test_fal_outage_shows_breaker_503s_during_the_window_and_recovery_after(stack: EmbeddedStack,
                                                                            stack_file: Path, tmp_path: Path):
    scenario = write_scenario(
        tmp_path, "fal_outage_under_load",
        # an arrival rate (8 paced users), so submissions go on while some users follow slow generations
        load={"rate_per_s": 4, "duration_s": 17, "drain_s": 10},
        faults=[{"at": 3, "for": 5, "fal": {"submit_error_rate": 1.0}}],  # FAL answers every submit with a 500
        checks=[{"metric": "breaker_opened", "equals": True},
                {"metric": "rate_503", "phase": "during", "min": 0.1},
                {"metric": "success_rate", "phase": "after", "settle_s": 3, "min": 0.7},
                {"metric": "recovery_s", "max": 10}])
    result = run_load(stack_file, tmp_path / "out", "--scenario-file", str(scenario))

    assert result.returncode == 0, result.output[-3000:]
    summary = result.summary
    phases = summary["metrics"]["phases"]
    assert phases["during"]["rate_503"] > 0.1
    assert phases["before"]["rate_503"] in (0, None) and phases["after"]["requests"] > 0
    assert summary["metrics"]["reasons_503"].get("breaker_open", 0) > 0
    assert summary["metrics"]["recovery_s"] is not None
    [window] = summary["faults"]
    assert window["description"] == "FAL submit_error_rate=1.0" and 4.5 < window["end"] - window["start"] < 7
    # 503s are recorded by reason in Locust's failure table
    assert any(f["error"] == "503 breaker_open" and f["type"] == "POST" for f in summary["locust"]["failures"])
    assert_no_faults_left(stack)

    # a failing generation can be found in the service's traces by the trace id the summary lists
    failing = [t["trace_id"] for t in summary["failing_traces"] if t["status"] == 503]
    assert failing
    deadline = time.monotonic() + 15
    while not any(trace in Path(stack.info.traces_file).read_text() for trace in failing):
        assert time.monotonic() < deadline, "no failing trace id found in the service's traces"
        time.sleep(0.5)


def test_few_paced_users_keep_the_arrival_rate_while_generations_are_slow(stack_file: Path, tmp_path: Path):
    """One user carries a 4/s arrival rate through a fault that makes every generation take seconds: it
    must not wait for each result (it would send one request in the whole fault) but keep submitting,
    as `genchaos run` does, so the fault's phase gets its share of requests."""
    scenario = write_scenario(
        tmp_path, "slow_fal_one_user", load={"rate_per_s": 4, "duration_s": 8, "drain_s": 10},
        faults=[{"at": 2, "for": 4, "fal": {"processing_time_s": 2.0}}],
        checks=[{"metric": "requests", "phase": "during", "min": 12},
                {"metric": "lost_generations", "max": 0}])
    result = run_load(stack_file, tmp_path / "out", "--scenario-file", str(scenario), "--users", "1",
                      "--spawn-rate", "1")

    assert result.returncode == 0, result.output[-3000:]
    metrics = result.summary["metrics"]
    assert metrics["phases"]["during"]["requests"] >= 12
    assert 26 <= metrics["requests"] <= 38  # 4/s for 8 s
    assert metrics["phases"]["during"]["latency_p50_s"] >= 2.0  # the generations really were slow


def test_a_run_time_ending_early_fails_the_gate_naming_the_fault_and_the_empty_phase(stack: EmbeddedStack,
                                                                                    stack_file: Path,
                                                                                    tmp_path: Path):
    scenario = write_scenario(
        tmp_path, "cut_short", load={"rate_per_s": 4, "duration_s": 13, "drain_s": 8},
        faults=[{"at": 2, "for": 2, "fal": {"processing_time_s": 1.0}}, {"at": 6, "for": 2, "down": "fal"}],
        checks=[{"metric": "success_rate", "phase": "after", "settle_s": 2, "min": 0.7},
                {"metric": "lost_generations", "max": 0}])
    result = run_load(stack_file, tmp_path / "out", "--scenario-file", str(scenario), "--run-time", "5")

    assert result.returncode == 1, result.output[-3000:]
    checks = {check["name"]: check for check in result.summary["checks"]}
    timeline = checks["fault timeline ran as scheduled"]
    assert timeline["status"] == "not held"
    assert ("1 of the scenario's 2 faults never ran (fal proxy down at 6s): the load ended at 5s; "
            "lengthen --run-time past 8s") in timeline["observed"]
    after = checks["success_rate[after]"]
    assert after["status"] == "inconclusive" and after["n"] == 0
    assert after["observed"].startswith("only 0 requests were sent in phase 'after', 5 needed")
    [window] = result.summary["faults"]
    assert window["description"].startswith("FAL processing_time_s")
    output = " ".join(result.output.split())
    assert "inconclusive success_rate[after]: expected >= 0.7, observed only 0 requests" in output
    assert "faults never ran (fal proxy down at 6s)" in output
    assert_no_faults_left(stack)


def test_fair_share_floods_from_one_more_user_whose_refusals_are_judged_apart(stack_file: Path, tmp_path: Path):
    """fair_share as `genchaos run` sends it: 3/s from paced users, 15/s from one flooding user. The
    hardened per-user bound refuses the flood with 429, and only the others' generations make the
    success rate and latency."""
    result = run_load(stack_file, tmp_path / "out", "--scenario", "fair_share")

    assert result.returncode == 0, result.output[-3000:]
    summary = result.summary
    metrics = summary["metrics"]
    assert metrics["flood_refused_429"] >= 1
    assert 180 <= metrics["flood_requests"] <= 240  # 15/s for 15 s
    rows = {(row["type"], row["name"]): row for row in summary["locust"]["by_request"]}
    flood = rows[("POST", "/api/v1/generations (flood)")]
    # the flood's POSTs are its flood requests, never generations: success rate and latency are the others'
    assert flood["requests"] == metrics["flood_requests"]
    assert metrics["requests"] == summary["locust"]["generations"] == rows[("POST", "/api/v1/generations")]["requests"]
    assert 36 <= metrics["requests"] <= 50  # 3/s for 15 s
    assert metrics["success_rate"] >= 0.9
    # a 429 is the answer the flood is there to draw: Locust counts only other answers as its failures
    assert flood["failures"] == metrics["flood_requests"] - metrics["flood_accepted"] - metrics["flood_refused_429"]
    assert peak_users(result.out) == 6 + 1  # the paced users of 3/s, as without a flood, and the flooding one


def test_without_the_per_user_bound_the_flood_goes_unrefused_and_fair_share_fails(unbounded_stack_file: Path,
                                                                                  tmp_path: Path):
    result = run_load(unbounded_stack_file, tmp_path / "out", "--scenario", "fair_share")

    assert result.returncode == 1, result.output[-3000:]
    summary = result.summary
    checks = {check["name"]: check for check in summary["checks"]}
    assert not checks["flood_refused_429"]["passed"] and checks["flood_refused_429"]["observed"] == 0
    assert summary["metrics"]["flood_accepted"] > 20  # more than the bound lets one user have unfinished
    assert "flood_refused_429: expected >= 1, observed 0" in " ".join(result.output.split())


def test_run_whose_gate_must_fail_exits_non_zero(stack_file: Path, tmp_path: Path):
    scenario = write_scenario(tmp_path, "impossible", load={"clients": 2, "duration_s": 3, "think_s": 0.2},
                              checks=[{"metric": "latency_p95_s", "max": 0.001, "name": "p95 under a millisecond"}])
    result = run_load(stack_file, tmp_path / "out", "--scenario-file", str(scenario))

    assert result.returncode == 1, result.output[-3000:]
    assert result.summary["verdict"] == "fail"
    [check] = result.summary["checks"]
    assert check["name"] == "p95 under a millisecond" and not check["passed"] and check["observed"] > 0.001
    assert "SLO gate: FAIL" in result.output and "p95 under a millisecond" in result.output


def test_distributed_run_with_two_workers_adds_up(stack: EmbeddedStack, stack_file: Path, tmp_path: Path):
    scenario = write_scenario(tmp_path, "distributed", load={"clients": 4, "duration_s": 6, "think_s": 0.2},
                              checks=STEADY_CHECKS)
    before = http_api_requests(stack.info.service_url)
    result = run_load(stack_file, tmp_path / "out", "--scenario-file", str(scenario), "--workers", "2")
    served = http_api_requests(stack.info.service_url) - before

    assert result.returncode == 0, result.output[-3000:]
    summary = result.summary
    workers = summary["workers"]
    assert len(workers) == 2 and all(w["http_requests"] > 0 for w in workers.values())
    locust = summary["locust"]
    assert locust["http_requests"] == sum(w["http_requests"] for w in workers.values())
    assert locust["generations"] == sum(w["generations"] for w in workers.values()) == summary["metrics"]["requests"]
    assert served == locust["http_requests"], "the service answered a different number of requests than were counted"


def test_interrupting_the_master_mid_fault_rolls_every_fault_back(stack: EmbeddedStack, stack_file: Path,
                                                                  tmp_path: Path):
    scenario = write_scenario(
        tmp_path, "long_faults", load={"clients": 2, "duration_s": 60, "think_s": 0.2},
        faults=[{"at": 1, "for": 50, "down": "fal"},
                {"at": 1, "for": 50, "toxic": {"proxy": "storage", "type": "latency", "attributes": {"latency": 50}}},
                {"at": 1, "for": 50, "fal": {"latency_s": 0.3}}],
        checks=STEADY_CHECKS)
    faults = FaultController(stack.info.toxiproxy_url)
    fal = FalEmulatorControl(stack.info.fal_admin_url, stack.info.ca_bundle)
    run = genchaos_load(stack_file, tmp_path / "out", "--scenario-file", str(scenario), "--workers", "1")
    try:
        deadline = time.monotonic() + 60
        while faults.is_enabled("fal") or not faults.toxics("storage") or fal.behaviour()["latency_s"] != 0.3:
            assert run.poll() is None, run.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the faults never started"
            time.sleep(0.2)
        [master] = [p for p in psutil.Process(run.pid).children() if "--master" in p.cmdline()]
        master.send_signal(signal.SIGINT)
        result = finish(run, tmp_path / "out", timeout_s=60)
    finally:
        fal.close()
    assert result.returncode in (0, 1), result.output[-3000:]  # the partial run was still judged
    assert_no_faults_left(stack)
    assert FalEmulatorControl(stack.info.fal_admin_url, stack.info.ca_bundle).behaviour()["latency_s"] == 0


def test_locust_web_ui_targets_the_stack_named_in_the_environment(stack: EmbeddedStack, stack_file: Path,
                                                                  tmp_path: Path):
    """`locust -f loadtests/locustfile.py` with GENCHAOS_STACK_FILE set, as the README says."""
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--web-host", "127.0.0.1",
                            "--web-port", str(port)], env={**os.environ, "GENCHAOS_STACK_FILE": str(stack_file)},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        page = None
        while page is None:
            assert web.poll() is None, web.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the web UI never answered"
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.3)
        assert page.status_code == 200
        assert stack.info.service_url in page.text  # the host field is filled in from the stack file
    finally:
        web.send_signal(signal.SIGTERM)
        finish(web, tmp_path, timeout_s=30)
