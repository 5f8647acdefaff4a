"""The soak's fault timeline: the faults of the catalogue's ci scenarios, one after another in a
seeded order, each held for its own duration with a quiet gap after it, round and round until the
soak ends. Every fault is held and taken back through the one FaultSession (chaos/run/timeline.py).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from chaos.run.observations import FaultWindow
from chaos.run.timeline import FaultSession
from chaos.scenarios.catalogue import load_catalogue, suite
from chaos.scenarios.model import Fault
from chaos.stack.faults import FaultError

SUITE = "ci"
QUIET_GAP_S = 10.0  # between two faults: the breakers close and the queue catches up


def ci_faults() -> list[Fault]:
    """Each distinct fault of the ci scenarios, in catalogue order."""
    faults: dict[str, Fault] = {}
    for scenario in suite(SUITE, load_catalogue()):
        for fault in scenario.faults:
            faults.setdefault(fault.describe(), fault)
    return list(faults.values())


class FaultRotation:
    """Holds the faults in turn from a thread until ``stop``; errors are kept, never raised."""

    def __init__(self, session: FaultSession, faults: list[Fault], seed: int,
                 log: Callable[[str], None]) -> None:
        self._session = session
        self._faults = list(faults)
        random.Random(seed).shuffle(self._faults)
        self._log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-faults", daemon=True)
        self.errors: list[str] = []

    @property
    def windows(self) -> list[FaultWindow]:
        """Every fault held so far, in unix times."""
        return list(self._session.windows)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after taking back the fault being held, then roll every fault back."""
        self._stop.set()
        self._thread.join(timeout=30)
        try:
            self._session.rollback()
        except (FaultError, OSError) as exc:
            self.errors.append(f"rollback failed: {exc}")

    def _run(self) -> None:
        index = 0
        while not self._stop.wait(QUIET_GAP_S):
            fault = self._faults[index % len(self._faults)]
            index += 1
            try:
                with self._session.holding(fault):
                    self._log(f"fault on: {fault.describe()} for {fault.for_s:g}s")
                    self._stop.wait(fault.for_s)
            except (FaultError, OSError) as exc:
                self.errors.append(f"{fault.describe()}: {exc}")
