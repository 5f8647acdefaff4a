"""Locust against the embedded stack: the gate, a FAL outage under load, distributed totals, and
fault rollback on an interrupted run. Each run is a few seconds of load by a few users."""

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

from chaos.faults import FalEmulatorControl, FaultController
from chaos.processes import free_port
from chaos.stack import EmbeddedStack
from tests.load.helpers import (
    LOCUSTFILE,
    assert_no_faults_left,
    finish,
    genchaos_load,
    http_api_requests,
    run_load,
    write_scenario,
)

pytestmark = [pytest.mark.load, pytest.mark.slow]

# generous: the machine may be busy with other work
STEADY_CHECKS = [
    {"metric": "success_rate", "min": 0.9},
    {"metric": "rate_503", "max": 0.05},
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
    assert (result.out / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    assert "SLO gate: PASS" in result.output


def test_fal_outage_shows_breaker_503s_during_the_window_and_recovery_after(stack: EmbeddedStack,
                                                                            stack_file: Path, tmp_path: Path):
    scenario = write_scenario(
        tmp_path, "fal_outage_under_load",
        # an arrival rate (8 paced users), so submissions go on while some users follow slow generations
        load={"rate_per_s": 4, "duration_s": 14, "drain_s": 10},
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
