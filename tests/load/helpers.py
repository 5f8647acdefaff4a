"""Helpers of the load tests: Locust runs in child processes (it patches the standard library with
gevent on import, which must not happen inside pytest), against the session's embedded stack."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.faults import PROXY_NAMES, FaultController

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadtests" / "locustfile.py"
RUN_TIMEOUT_S = 120


@dataclass
class LoadRun:
    returncode: int
    output: str
    out: Path

    @property
    def summary(self) -> dict:
        return json.loads((self.out / "summary.json").read_text())


def write_scenario(directory: Path, name: str, **fields) -> Path:
    """A scenario YAML file (validated by the runner like any catalogue file)."""
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "description": f"load test {name}", **fields}))
    return path


def wait_for_calm(stack: EmbeddedStack, timeout_s: float = 30) -> None:
    """No fault left and every breaker closed, so one test's outage does not leak into the next."""
    info = stack.info
    faults = FaultController(info.toxiproxy_url)
    faults.reset()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        breakers = httpx.get(f"{info.service_url}/readyz", timeout=5).json().get("breakers", {})
        if all(b.get("state") == "closed" for b in breakers.values()):
            return
        time.sleep(0.2)
    raise AssertionError(f"breakers still not closed after {timeout_s}s: {breakers}")


def assert_no_faults_left(stack: EmbeddedStack) -> None:
    faults = FaultController(stack.info.toxiproxy_url)
    for proxy in PROXY_NAMES:
        assert faults.toxics(proxy) == {}, f"toxics left on {proxy}"
        assert faults.is_enabled(proxy), f"proxy {proxy} left disabled"


def genchaos_load(stack_file: Path, out: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "chaos", "load", "--stack-file", str(stack_file),
                             "--out", str(out), *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(process: subprocess.Popen, out: Path, timeout_s: float = RUN_TIMEOUT_S) -> LoadRun:
    """Wait for a run (killing its whole process group if it overruns) and collect what it printed."""
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"load run did not finish within {timeout_s}s:\n{output[-3000:]}") from None
    return LoadRun(process.returncode, output, out)


def run_load(stack_file: Path, out: Path, *args: str, env: dict[str, str] | None = None) -> LoadRun:
    return finish(genchaos_load(stack_file, out, *args, env=env), out)


def peak_users(out: Path) -> int:
    """The most Locust users that ran at once (Locust's stats history, written with --csv-full-history)."""
    with (out / "locust_stats_history.csv").open() as history:
        return max(int(row["User Count"]) for row in csv.DictReader(history))


def wait_for_empty_queue(service_url: str, timeout_s: float = 90) -> None:
    """No generation pending or processing, so the next test's do not queue behind a backlog."""
    deadline = time.monotonic() + timeout_s
    while _metric(service_url, "genchaos_generation_queue_depth") > 0:
        assert time.monotonic() < deadline, f"generations still unfinished after {timeout_s}s"
        time.sleep(0.5)


def _metric(service_url: str, name: str, route_prefix: str = "") -> float:
    text = httpx.get(f"{service_url}/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and sample.labels.get("route", "").startswith(route_prefix))


def http_api_requests(service_url: str) -> float:
    """The service's own count of generation API responses (all methods and statuses)."""
    return _metric(service_url, "genchaos_http_requests_total", "/api/v1/generations")
