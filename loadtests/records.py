"""Gathering every generation's record where the verdict is computed.

Locust's statistics keep counts and response-time histograms, not when each generation was sent,
so phases (before, during, after a fault) and recovery cannot come from them alone. Each process
that runs users keeps the record of every GENERATION it reports, and apart from them the record of
every flood POST (FloodingUser); a worker sends its records with each periodic stats report
(Locust's `report_to_master` / `worker_report` events), so the master ends up with all of them, and
with what each worker says it sent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from chaos.run.observations import RequestRecord
from loadtests.users import FLOOD_RECORD, GENERATION_REQUEST_TYPE

REPORT_KEY = "genchaos"


@dataclass
class WorkerTally:
    """What one worker reported sending, and the busiest its CPU was seen."""

    http_requests: int = 0
    generations: int = 0
    flood_requests: int = 0
    cpu_peak_percent: float = 0.0


class RecordCollector:
    """The run's generation and flood records (absolute unix times) and, on a master, per-worker tallies."""

    def __init__(self, environment) -> None:
        self._environment = environment
        self.records: list[RequestRecord] = []
        self.flood_records: list[RequestRecord] = []
        self.workers: dict[str, WorkerTally] = {}
        self._http_unreported = 0
        events = environment.events
        events.test_start.add_listener(self._on_test_start)
        events.request.add_listener(self._on_request)
        events.report_to_master.add_listener(self._on_report_to_master)
        events.worker_report.add_listener(self._on_worker_report)

    def _on_test_start(self, **_kwargs) -> None:
        self.records.clear()
        self.flood_records.clear()
        self.workers.clear()
        self._http_unreported = 0

    def _on_request(self, request_type, context=None, **_kwargs) -> None:
        if request_type == GENERATION_REQUEST_TYPE:
            self.records.append(context["record"])
        else:
            self._http_unreported += 1
            if context and FLOOD_RECORD in context:
                self.flood_records.append(context[FLOOD_RECORD])

    def _on_report_to_master(self, client_id, data, **_kwargs) -> None:
        """On a worker: hand over the records gathered since the last report."""
        data[REPORT_KEY] = {
            "records": [dataclasses.asdict(r) for r in self.records],
            "flood_records": [dataclasses.asdict(r) for r in self.flood_records],
            "http_requests": self._http_unreported,
            "cpu_percent": self._environment.runner.current_cpu_usage,
        }
        self.records.clear()
        self.flood_records.clear()
        self._http_unreported = 0

    def _on_worker_report(self, client_id, data, **_kwargs) -> None:
        """On the master: keep a worker's records and add to its tally."""
        payload = data.get(REPORT_KEY)
        if not payload:
            return
        tally = self.workers.setdefault(client_id, WorkerTally())
        tally.http_requests += payload["http_requests"]
        tally.generations += len(payload["records"])
        tally.flood_requests += len(payload["flood_records"])
        tally.cpu_peak_percent = max(tally.cpu_peak_percent, payload["cpu_percent"])
        self.records.extend(RequestRecord(**r) for r in payload["records"])
        self.flood_records.extend(RequestRecord(**r) for r in payload["flood_records"])
