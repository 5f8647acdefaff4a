"""The shipped SLO rules and fast-burn alert, judged the way a scenario judges them: a real Prometheus
scrapes a service (here a stand-in exposing the reference service's request counter) while its answers
go from good to an outage, and what the rules recorded is compared with the answers given. Broken rules
(a 503 counted as good) disagree; the fast-burn alert fires on the outage and not before it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, MetricsHandler

from chaos.contract.model import default_contract
from chaos.judge.telemetry_truth import slo_rule_disagreements
from chaos.run import slo_rules
from chaos.run.observations import Observation
from tests.dashboards.promtools import RULES_DIR

pytestmark = pytest.mark.timeout(120)
ROUTE = "/api/v1/generations/{generation_id}"


class StandIn:
    """A /metrics endpoint with the reference service's request counter, whose answers a test chooses."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("genchaos_http_requests_total", "HTTP responses", ["route", "method", "status"],
                                registry=self.registry)
        self.statuses: list[tuple[float, int]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), MetricsHandler.factory(self.registry))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, status: int, times: int, at: float) -> None:
        self.requests.labels(ROUTE, "GET", str(status)).inc(times)
        self.statuses += [(at, status)] * times


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    service = StandIn()
    yield service
    service.server.shutdown()


def _contract(tmp_path: Path, slo_file: Path):
    contract = default_contract().model_copy(deep=True)
    contract.source = tmp_path / "genchaos.yaml"
    contract.telemetry.slo_rules.files = [str(slo_file), str(RULES_DIR / "genchaos-alerts.rules.yml")]
    return contract


def _judged(contract, stand_in: StandIn) -> tuple[Observation, int]:
    """Answers over a few scrapes: good, then an outage of 503s, then good again; the rules read after
    (each status's first scrape interval is never in a rate, and the comparison allows for it)."""
    prometheus = slo_rules.ScenarioPrometheus(contract, stand_in.url)
    try:
        started = time.time()
        for status, times in ((200, 30), (503, 5), (503, 35), (200, 10), (200, 20)):
            stand_in.answer(status, times, time.time())
            time.sleep(1.2)  # more than two scrapes apart
        reading = prometheus.read(started, time.time(), slo_rules.unseen_by_rates(stand_in.statuses))
    finally:
        prometheus.close()
    obs = Observation(scenario="stand-in", profile="hardened", timing="fast", started_at=started, duration_s=3)
    obs.slo_reading, obs.api_answers = reading, len(stand_in.statuses)
    obs.api_server_errors = obs.received_503s["breaker_open/overloaded"] = 40
    comparison = slo_rule_disagreements(obs)
    return obs, comparison.disagreements


def test_the_shipped_rules_agree_with_the_answers_and_the_alert_fires(prometheus_binary, stand_in, tmp_path):
    obs, disagreements = _judged(_contract(tmp_path, RULES_DIR / "genchaos-slo.rules.yml"), stand_in)
    assert disagreements == 0, obs.slo_reading
    assert obs.slo_reading.fast_burn_fired is True


def test_rules_that_count_503s_as_good_disagree(prometheus_binary, stand_in, tmp_path):
    rules = yaml.safe_load((RULES_DIR / "genchaos-slo.rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["expr"] = rule["expr"].replace('status=~"5.."', 'status=~"50[0-2]"')
    broken = tmp_path / "broken.rules.yml"
    broken.write_text(yaml.safe_dump(rules))
    obs, disagreements = _judged(_contract(tmp_path, broken), stand_in)
    assert disagreements == 1 and obs.slo_reading.success_ratio == pytest.approx(1.0)
    assert obs.slo_reading.fast_burn_fired is False
