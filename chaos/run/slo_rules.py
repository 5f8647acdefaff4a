"""The service's own SLO recording rules and burn-rate alerts, evaluated by a real Prometheus that scrapes
the service while a scenario runs (a fresh one per scenario, so no other run's samples sit in its
windows). After the load it waits for a scrape past the last answer and one rule evaluation, then reads
what the rules recorded and whether the fast-burn alert fired: what an SRE's dashboard and pager would
have said about this run, to be set against what the harness saw (chaos/judge/telemetry_truth.py).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from chaos.contract.model import Contract
from chaos.run.observations import SloReading
from chaos.stack.processes import StackError
from chaos.stack.prometheus import prometheus_binary, running_prometheus

INTERVAL = "500ms"  # scrapes and rule evaluations: several per second of a scenario
INTERVAL_S = 0.5
CATCH_UP_TIMEOUT_S = 10.0
SLO_METRICS = ("slo_rule_disagreements", "fast_burn_alert_fired")


def why_unmeasurable(contract: Contract) -> str | None:
    """What stops the rules being judged here, or None when they can be."""
    if contract.telemetry.slo_rules is None or contract.telemetry.metrics_path is None:
        return "the contract names no SLO rules and metrics endpoint"
    missing = [str(path) for path in contract.rule_files() if not path.is_file()]
    if missing:
        return f"the contract's rule files are missing: {', '.join(missing)}"
    if prometheus_binary() is None:
        return "prometheus is not installed (Debian package `prometheus`)"
    return None


def unseen_by_rates(statuses: list[tuple[float, int]]) -> dict[int, int]:
    """Answers a rate() cannot see, by status: a counter series is born at the scrape after its first
    increment, and what it held then never counts as an increase, so up to one scrape interval's answers
    of each status."""
    first: dict[int, float] = {}
    unseen: dict[int, int] = {}
    for at, status in sorted(statuses):
        first.setdefault(status, at)
        unseen[status] = unseen.get(status, 0) + (at - first[status] <= INTERVAL_S)
    return unseen


class ScenarioPrometheus:
    """A Prometheus scraping one service and evaluating its contract's rules for the length of a scenario."""

    def __init__(self, contract: Contract, service_url: str) -> None:
        rules = contract.telemetry.slo_rules
        assert rules is not None and contract.telemetry.metrics_path is not None
        self._rules = rules
        self._stack = contextlib.ExitStack()
        work_dir = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="genchaos-prometheus-")))
        target = urlsplit(service_url)
        scrape = {"job_name": rules.job, "metrics_path": contract.telemetry.metrics_path, "scheme": target.scheme,
                  "static_configs": [{"targets": [target.netloc]}]}
        try:
            self.url = self._stack.enter_context(running_prometheus(
                prometheus_binary() or "prometheus", work_dir, [scrape], contract.rule_files(), interval=INTERVAL))
            self._first_scrape()
        except BaseException:
            self._stack.close()
            raise

    def _first_scrape(self) -> None:
        """Wait for the first scrape: Prometheus applies its targets a few seconds after it starts, and what
        the service counted before that scrape never shows in a rate."""
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        while not self._query(f'up{{job="{self._rules.job}"}} == 1'):
            if time.monotonic() > deadline:
                raise StackError(f"prometheus did not scrape {self._rules.job} within {CATCH_UP_TIMEOUT_S:g}s")
            time.sleep(INTERVAL_S / 2)

    def close(self) -> None:
        self._stack.close()

    def _query(self, expr: str, **params: float) -> list[dict]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr, **params}, timeout=10)
        response.raise_for_status()
        return response.json()["data"]["result"]

    def _value(self, expr: str | None) -> float | None:
        if expr is None:
            return None
        result = self._query(expr)
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def read(self, started_at: float, answered_until: float, unseen: dict[int, int]) -> SloReading:
        """What the rules say once Prometheus has scraped past ``answered_until`` (unix time) and evaluated
        its rules on that scrape; whether the fast-burn alert fired at any evaluation since ``started_at``;
        ``unseen`` answers no rate could count (the tolerance of the comparison)."""
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        while time.monotonic() < deadline:
            scraped = self._query(f'timestamp(up{{job="{self._rules.job}"}})')
            if scraped and float(scraped[0]["value"][1]) > answered_until:
                break
            time.sleep(INTERVAL_S / 2)
        time.sleep(INTERVAL_S * 2)  # one evaluation of every rule group on that scrape
        fired = None
        if self._rules.fast_burn_alert:
            window = max(1, round(time.time() - started_at))
            fired = bool(self._query(f'max_over_time(ALERTS{{alertname="{self._rules.fast_burn_alert}",'
                                     f'alertstate="firing"}}[{window}s])'))
        return SloReading(success_ratio=self._value(self._rules.success_ratio),
                          ratio_503=self._value(self._rules.ratio_503), fast_burn_fired=fired, unseen_answers=unseen)
