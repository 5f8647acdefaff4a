"""The fault timeline's one set of moves, shared by `genchaos run` (asyncio) and Locust (gevent):
apply a fault, record its window (what it broke, the bytes its proxy moved while it was on), take
it back, and roll everything back at the end. Each engine only schedules these moves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from chaos.run.observations import FaultWindow
from chaos.scenarios.model import Fault
from chaos.stack.faults import FAULT_ACTIVE, FalEmulatorControl, FaultController


class FaultSession:
    """Faults of one scenario on one stack: each held fault becomes a FaultWindow in ``windows``."""

    def __init__(self, faults: FaultController, fal: FalEmulatorControl, clock: Callable[[], float]) -> None:
        self._faults = faults
        self._fal = fal
        self._clock = clock
        self._fal_defaults = fal.behaviour()
        self.windows: list[FaultWindow] = []

    def _apply(self, fault: Fault) -> AbstractContextManager:
        if fault.toxic is not None:
            t = fault.toxic
            return self._faults.toxic(t.proxy, t.type, stream=t.stream, toxicity=t.toxicity,
                                      attributes=t.attributes, name=f"{t.type}_{t.stream}_{int(fault.at_s * 1000)}")
        if fault.down is not None:
            return self._faults.down(fault.down)
        return self._fal.behaving(**fault.fal.fields())

    def _bytes(self, fault: Fault) -> float | None:
        return None if fault.proxy is None else self._faults.proxy_bytes(fault.proxy)

    @contextmanager
    def holding(self, fault: Fault) -> Iterator[FaultWindow]:
        """Hold ``fault`` while the block runs. The window opens when applying starts and closes when
        taking back ends, so a request racing either edge counts in the fault, never beside it; it is
        recorded even when applying fails. The proxy's bytes are read after applying and before taking
        back, so a proxy taken down reads zero however busy it was around the fault."""
        window = FaultWindow(start=self._clock(), end=self._clock(), description=fault.describe(),
                             dependency=fault.dependency, kind=fault.kind, proxy=fault.proxy,
                             attributes=fault.attributes)
        gauge = FAULT_ACTIVE.labels(fault.proxy or "fal", fault.kind)
        try:
            with self._apply(fault):
                gauge.inc()
                bytes_on = self._bytes(fault)
                try:
                    yield window
                finally:
                    bytes_off = self._bytes(fault)
                    gauge.dec()
                    if bytes_on is not None and bytes_off is not None:
                        window.proxy_bytes = bytes_off - bytes_on
        finally:
            window.end = self._clock()
            self.windows.append(window)

    def rollback(self) -> None:
        """Remove every fault: Toxiproxy reset (toxics gone, proxies up) and FAL's behaviour as it was."""
        self._faults.reset()
        self._fal.set_behaviour(**self._fal_defaults)
