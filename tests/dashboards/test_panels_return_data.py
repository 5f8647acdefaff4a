"""Every dashboard panel shows data for a real run: a real Prometheus (with our recording rules)
scrapes the embedded stack's service and Toxiproxy while users generate images and FAL goes
down; then each panel's queries run against it as Grafana would send them.

Slow-ish (about 30-60 s on top of the shared stack), marked `chaos`.
"""

from __future__ import annotations

import time

import httpx
import pytest

from chaos.stack.faults import FalEmulatorControl, FaultController
from chaos.stack.prometheus import running_prometheus
from tests.dashboards.promtools import (
    GRAFANA_VARIABLES,
    RULES_DIR,
    grafana_to_promql,
    instant_query,
    load_dashboards,
    panel_queries,
)
from tests.support import auth_headers, submit, wait_terminal

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

# Wide enough that the whole run, healthy phase included, is inside every window.
RUN_VARIABLES = {**GRAFANA_VARIABLES, "$__rate_interval": "2m", "$__range": "10m"}
OUTAGE_TIMEOUT_S = 30.0
FAL_BREAKER_MOVED = 'genchaos_breaker_transitions_total{dependency="fal"'


def scrape_job(name: str, base_url: str) -> dict:
    return {"job_name": name, "static_configs": [{"targets": [base_url.split("://", 1)[1].rstrip("/")]}]}


def service_metrics(service_url: str) -> str:
    return httpx.get(f"{service_url}/metrics", timeout=5).text


def drive_healthy_traffic(info) -> None:
    """A few users generate images, list them, and ask for someone else's."""
    for _ in range(3):
        headers = auth_headers(info)
        response = submit(info, headers)
        assert response.status_code == 202, response.text
        wait_terminal(info, headers, response.json()["id"])
        httpx.get(f"{info.service_url}/api/v1/generations", headers=headers, timeout=10)
    httpx.get(f"{info.service_url}/api/v1/generations/00000000-0000-0000-0000-000000000000",
              headers=auth_headers(info), timeout=10)


def drive_fal_outage(info) -> None:
    """FAL fails in both ways a user meets: it answers every submission with a 500 until the
    service's FAL breaker opens, then it becomes unreachable until the service answers 503."""
    headers = auth_headers(info)
    deadline = time.monotonic() + OUTAGE_TIMEOUT_S
    with FalEmulatorControl(info.fal_admin_url, info.ca_bundle).behaving(submit_error_rate=1.0):
        while time.monotonic() < deadline and FAL_BREAKER_MOVED not in service_metrics(info.service_url):
            submit(info, headers)
            time.sleep(0.3)
    with FaultController(info.toxiproxy_url).down("fal"):
        while time.monotonic() < deadline:
            httpx.get(f"{info.service_url}/readyz", timeout=10)
            if submit(info, headers).status_code == 503:
                break
            time.sleep(0.3)


def wait_for_scrapes(prometheus: str, jobs: int, at_least: int, timeout_s: float = 30.0) -> None:
    """Prometheus applies new targets only every 5 s: wait until each job has ``at_least`` scrapes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        counts = [float(r["value"][1]) for r in
                  instant_query(prometheus, "count_over_time(up[10m])").json()["data"]["result"]]
        if len(counts) == jobs and min(counts) >= at_least:
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus did not scrape every job {at_least} times in {timeout_s:g} s")


def scrapes_so_far(prometheus: str) -> int:
    result = instant_query(prometheus, "min(count_over_time(up[10m]))").json()["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def test_every_panel_returns_data(stack, prometheus_binary, tmp_path):
    info = stack.info
    scrape_configs = [scrape_job("genchaos-service", info.service_url), scrape_job("toxiproxy", info.toxiproxy_url)]
    with running_prometheus(prometheus_binary, tmp_path, scrape_configs=scrape_configs,
                            rule_files=sorted(RULES_DIR.glob("*.yml"))) as prometheus:
        wait_for_scrapes(prometheus, jobs=len(scrape_configs), at_least=1)
        drive_healthy_traffic(info)
        drive_fal_outage(info)
        # a few scrapes and rule evaluations after the last request, so every rate() has two samples
        wait_for_scrapes(prometheus, jobs=len(scrape_configs), at_least=scrapes_so_far(prometheus) + 3)

        empty = []
        for name, dashboard in load_dashboards().items():
            panels: dict[int, tuple[str, list[int]]] = {}
            for panel, expr in panel_queries(dashboard):
                response = instant_query(prometheus, grafana_to_promql(expr, RUN_VARIABLES))
                assert response.status_code == 200, response.text
                title, counts = panels.setdefault(panel["id"], (panel["title"], []))
                counts.append(len(response.json()["data"]["result"]))
            # A panel shows data when at least one of its queries returns series.
            empty += [f"{name}: {title}" for title, counts in panels.values() if not any(counts)]
        assert not empty, f"panels without data after a run with a FAL outage: {empty}"
