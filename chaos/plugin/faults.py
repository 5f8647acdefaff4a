"""Faults from a test: a catalogue scenario's faults, a toxic, a proxy outage or a FAL behaviour, each
held for a ``with`` block through the scenario runner's own FaultSession, and taken back when the
block ends; whatever is still on when the test ends is rolled back then."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

from chaos.plugin.scenarios import ScenarioRef, find_scenario
from chaos.run.observations import FaultWindow
from chaos.run.timeline import FaultSession
from chaos.scenarios.model import PROXY_DEPENDENCY, Fault
from chaos.stack.embedded import StackInfo
from chaos.stack.faults import FalEmulatorControl, FaultController

# A held fault lasts as long as its with block: holding never reads the start and length a fault
# entry of a scenario must have, so these are placeholders.
HELD_FOR_THE_BLOCK = {"at": 0, "for": 1}
# A dependency by what it is (fal, database, storage) or by its proxy's name (fal, postgres, storage).
PROXY_OF = {dependency: proxy for proxy, dependency in PROXY_DEPENDENCY.items()} | {p: p for p in PROXY_DEPENDENCY}


def proxy_of(dependency: str) -> str:
    """The Toxiproxy proxy in front of a dependency; ValueError naming the choices for anything else."""
    try:
        return PROXY_OF[dependency]
    except KeyError:
        raise ValueError(f"unknown dependency {dependency!r}; choose one of {', '.join(PROXY_OF)}") from None


class FaultControl:
    """Faults on one running stack, given to a test by the ``genchaos_faults`` fixture. Each method
    returns a context manager holding the fault; it yields the fault's FaultWindow (when it was on and
    the bytes its proxy carried meanwhile)."""

    def __init__(self, info: StackInfo) -> None:
        self.controller = FaultController(info.toxiproxy_url)
        self._fal = FalEmulatorControl(info.fal_admin_url, info.ca_bundle)
        started = time.monotonic()
        self._session = FaultSession(self.controller, self._fal, clock=lambda: time.monotonic() - started)

    def hold(self, fault: Fault | Mapping[str, Any]) -> AbstractContextManager[FaultWindow]:
        """A fault as a scenario file writes one (``at`` and ``for`` may be left out), e.g.
        ``{"toxic": {"proxy": "fal", "type": "timeout", "attributes": {"timeout": 0}}}``."""
        if not isinstance(fault, Fault):
            fault = Fault.model_validate({**HELD_FOR_THE_BLOCK, **fault})
        return self._session.holding(fault)

    def toxic(self, dependency: str, type: str, *, stream: str = "downstream", toxicity: float = 1.0,
              **attributes: int) -> AbstractContextManager[FaultWindow]:
        """A Toxiproxy toxic on fal, database or storage, e.g. ``toxic("database", "latency", latency=400)``."""
        return self.hold({"toxic": {"proxy": proxy_of(dependency), "type": type, "stream": stream,
                                    "toxicity": toxicity, "attributes": attributes}})

    def down(self, dependency: str) -> AbstractContextManager[FaultWindow]:
        """The dependency's proxy disabled: new connections refused, open ones closed."""
        return self.hold({"down": proxy_of(dependency)})

    def fal(self, **behaviour: float) -> AbstractContextManager[FaultWindow]:
        """FAL emulator behaviour fields, e.g. ``fal(submit_error_rate=1.0)``."""
        return self.hold({"fal": behaviour})

    @contextmanager
    def from_scenario(self, scenario: ScenarioRef) -> Iterator[list[FaultWindow]]:
        """Every fault of a scenario (catalogue name or YAML file) held together for the block; when
        each would start and how long it lasts in the scenario does not apply here."""
        chosen = find_scenario(scenario)
        if not chosen.faults:
            raise ValueError(f"scenario {chosen.name} has no fault to apply")
        with ExitStack() as held:
            yield [held.enter_context(self.hold(fault)) for fault in chosen.faults]

    def close(self) -> None:
        """Roll back every fault still on (every toxic removed, every proxy up, FAL behaving as when
        the test started), then release the emulator's admin connection."""
        try:
            self._session.rollback()
        finally:
            self._fal.close()
