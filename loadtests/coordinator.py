"""What the master (or the single local runner) does around a load test: start the fault timeline
and the service observer when the test starts, roll the faults back when it stops, and judge the
run when Locust quits. Workers never run any of this.
"""

from __future__ import annotations

import atexit
import logging
import time

from chaos.run.runner import link_fal_log
from chaos.run.telemetry import unmeasurable
from loadtests.faults_timeline import FaultTimeline
from loadtests.observer import ServiceObserver
from loadtests.options import LoadPlan, service_contract
from loadtests.records import RecordCollector
from loadtests.slo_gate import RunFacts, log_verdict, summary, verdict, write_summary

logger = logging.getLogger(__name__)


class Coordinator:
    """Owns the fault timeline, the observer and the gate of one Locust master or local runner."""

    def __init__(self, environment, plan: LoadPlan, collector: RecordCollector) -> None:
        self._environment = environment
        self._plan = plan
        self._collector = collector
        scenario, stack = plan.scenario, plan.stack
        self._timeline = FaultTimeline(scenario, stack) if scenario and scenario.faults and stack else None
        self._contract = service_contract(environment.parsed_options.service or "")
        self._observer = ServiceObserver(environment.host, stack, self._contract)
        self._started_at: float | None = None
        events = environment.events
        events.test_start.add_listener(self._on_test_start)
        events.test_stop.add_listener(self._on_test_stop)
        events.quitting.add_listener(self._on_quitting)
        atexit.register(self.roll_back)  # the last chance, should Locust exit some other way

    def _on_test_start(self, **_kwargs) -> None:
        self._started_at = time.time()
        self._observer.start(self._started_at)
        if self._timeline is not None:
            self._timeline.start(self._started_at, self._environment.parsed_options.run_time or None)

    def _on_test_stop(self, **_kwargs) -> None:
        self.roll_back()
        self._observer.stop()

    def roll_back(self) -> None:
        if self._timeline is not None:
            self._timeline.roll_back()

    def _on_quitting(self, environment, **_kwargs) -> None:
        self.roll_back()
        self._observer.stop()
        if self._started_at is None:
            return  # Locust quit before any test ran: nothing to judge
        facts = self._facts()
        result = verdict(facts)
        log_verdict(result)
        document = summary(result, facts, environment.runner.stats, environment.runner, self._collector.workers)
        if environment.parsed_options.summary_file:
            write_summary(document, environment.parsed_options.summary_file)
            logger.info("SLO summary written to %s", environment.parsed_options.summary_file)
        environment.process_exit_code = 0 if result.passed else 1

    def _facts(self) -> RunFacts:
        stack, options = self._plan.stack, self._environment.parsed_options
        return RunFacts(
            scenario=self._plan.scenario,
            profile=stack.profile if stack else "unknown",
            timing=stack.timing if stack else "unknown",
            started_at=self._started_at,
            duration_s=float(options.run_time or time.time() - self._started_at),
            records=list(self._collector.records),
            flood_records=list(self._collector.flood_records),
            fault_windows=list(self._timeline.windows) if self._timeline else [],
            breaker_samples=self._observer.samples,
            timings=self._observer.timings,
            service_counters=self._observer.counters,
            fal_log=link_fal_log(self._observer.fal_log(), self._collector.records + self._collector.flood_records,
                                 self._started_at),
            errors=list(self._timeline.errors) if self._timeline else [],
            unmeasurable=unmeasurable(self._contract),
            upstream_metric=self._contract.telemetry.metrics.upstream_attempts,
        )
