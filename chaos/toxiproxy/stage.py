"""A toxic running on one link: its toxicity draw, per-connection state and interruptions.

The stage is what a toxic sees as its `ToxicStub`. It reaches its link only through the
small `StageLink` protocol below, so the link depends on the stage and not the reverse.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Protocol

from .stream import Chunk
from .toxics import Toxic


class ToxicSpec(Protocol):
    """What a stage needs to know about a configured toxic."""

    seq: int
    toxicity: float
    toxic: Toxic


class StageLink(Protocol):
    """The link a stage runs on: where its chunks and its end of stream go next."""

    async def pass_on(self, chunk: Chunk, after: int) -> None: ...
    async def end_after(self, after: int) -> None: ...
    def close_from(self, after: int) -> None: ...


class Stage:
    """A toxic's place in one link's chain.

    An interrupt (the toxic updated, removed, or a neighbour added or removed) cuts short
    any wait of the chunk in progress, which then goes on at once, and redraws toxicity.
    """

    __slots__ = ("spec", "toxic", "link", "active", "state", "_generation", "_chunk_generation",
                 "_waiter")

    def __init__(self, spec: ToxicSpec, link: StageLink) -> None:
        self.spec = spec
        self.toxic = spec.toxic
        self.link = link
        self.state = spec.toxic.new_state()
        self.active = False
        self._generation = 0
        self._chunk_generation = 0
        self._waiter: asyncio.Future | None = None

    @property
    def seq(self) -> int:
        return self.spec.seq

    def start(self) -> None:
        self.active = random.random() < self.spec.toxicity
        if self.active:
            self.toxic.on_start(self)

    def stop(self) -> None:
        if self.active:
            self.toxic.on_stop(self)
            self.active = False

    def restart(self) -> None:
        self.stop()
        self.toxic = self.spec.toxic
        self._generation += 1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(False)
        self.start()

    async def handle(self, chunk: Chunk) -> None:
        self._chunk_generation = self._generation
        if self.active:
            await self.toxic.pipe(self, chunk)
        else:
            await self.forward(chunk)

    async def handle_end(self) -> None:
        self._chunk_generation = self._generation
        if self.active:
            await self.toxic.on_end(self)

    # --- the ToxicStub toxics use -------------------------------------------------------

    async def forward(self, chunk: Chunk) -> None:
        await self.link.pass_on(chunk, after=self.seq)

    async def sleep(self, seconds: float) -> bool:
        """Wait; False if the stage was interrupted (before or during the wait)."""
        if self._generation != self._chunk_generation:
            return False
        if seconds <= 0:
            return True
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(seconds, _resolve, waiter, True)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def sleep_until(self, deadline: float) -> bool:
        return await self.sleep(deadline - time.monotonic())

    async def end_link(self) -> None:
        """End this direction here, from inside the stage's own processing."""
        await self.link.end_after(self.seq)

    def close_link(self) -> None:
        """End this direction here, from outside the processing (timers, removal)."""
        self.link.close_from(self.seq)


def _resolve(future: asyncio.Future, value: bool) -> None:
    if not future.done():
        future.set_result(value)
