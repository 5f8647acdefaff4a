"""The scenario's fault timeline under load, run by the master (or the single local runner) only.

Each fault is applied at its time and ended after its duration, one greenlet per fault, through
the same FaultSession the chaos runner holds its faults with (chaos/run/timeline.py).
``roll_back`` ends every fault at once (Toxiproxy reset, FAL behaviour as it was before the
test); the coordinator calls it when the test stops, when Locust quits (Ctrl-C, SIGTERM) and at
interpreter exit, and it is safe to call more than once.
"""

from __future__ import annotations

import logging
import time

import gevent
from gevent.pool import Group

from chaos.run.observations import FaultWindow
from chaos.run.timeline import FaultSession
from chaos.scenarios.model import Fault, Scenario
from chaos.stack.embedded import StackInfo
from chaos.stack.faults import FalEmulatorControl, FaultController, FaultError

logger = logging.getLogger(__name__)


class FaultTimeline:
    """Applies a scenario's faults on schedule and always takes them back."""

    def __init__(self, scenario: Scenario, stack: StackInfo) -> None:
        self._scenario = scenario
        self._faults = FaultController(stack.toxiproxy_url)
        self._fal = FalEmulatorControl(stack.fal_admin_url, stack.ca_bundle)
        self._greenlets = Group()
        self._session: FaultSession | None = None
        self._rolled_back = True
        self._started_at = 0.0
        self.errors: list[str] = []

    @property
    def windows(self) -> list[FaultWindow]:
        """The faults applied so far, in seconds since the test started."""
        return [] if self._session is None else list(self._session.windows)

    def start(self, started_at: float, load_ends_s: float | None = None) -> None:
        """Schedule every fault relative to ``started_at`` (unix time of the test start), except those
        that would start once the load has ended (a short --run-time): with no traffic left they would
        prove nothing, so they are left out and the gate names them."""
        self.errors.clear()
        self._started_at = started_at
        try:
            self._session = FaultSession(self._faults, self._fal, clock=self._now)
            self._rolled_back = False
        except (FaultError, OSError) as exc:
            self.errors.append(f"cannot read the FAL emulator's behaviour: {exc}")
            return
        for fault in sorted(self._scenario.faults, key=lambda f: f.at_s):
            if load_ends_s is not None and fault.at_s >= load_ends_s:
                logger.warning("fault not applied: %s at %gs starts after the load ends at %gs",
                               fault.describe(), fault.at_s, load_ends_s)
            else:
                self._greenlets.spawn(self._run, fault)

    def _now(self) -> float:
        return time.time() - self._started_at

    def _run(self, fault: Fault) -> None:
        gevent.sleep(max(0.0, fault.at_s - self._now()))
        try:
            with self._session.holding(fault) as window:
                logger.info("fault on at %.1fs: %s", window.start, fault.describe())
                gevent.sleep(max(0.0, fault.end_s - self._now()))  # roll_back may end this early
        except (FaultError, OSError) as exc:
            self.errors.append(f"{fault.describe()}: {exc}")
            logger.error("fault timeline: %s: %s (the rollback resets everything)", fault.describe(), exc)
        finally:
            logger.info("fault off at %.1fs: %s", self._now(), fault.describe())

    def roll_back(self) -> None:
        """Stop the schedule and remove every fault; a no-op when nothing is left to undo."""
        self._greenlets.kill(block=True, timeout=10)
        if self._session is None or self._rolled_back:
            return
        self._rolled_back = True
        try:
            self._session.rollback()
            logger.info("faults rolled back: every toxic removed, every proxy enabled, FAL behaviour restored")
        except (FaultError, OSError) as exc:
            self.errors.append(f"rollback failed: {exc}")
            logger.error("fault rollback failed: %s", exc)
