"""What a toxic may call on the stage it runs in (Toxiproxy's ToxicStub).

Toxics see this protocol only, never the link that provides it, so they depend on nothing
but it and the stream vocabulary.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..stream import Chunk


class ToxicStub(Protocol):
    state: Any
    """Per-connection state from the toxic's `new_state`, kept across toxic updates."""

    async def forward(self, chunk: Chunk) -> None:
        """Pass `chunk` on to the next stage or the destination."""

    async def sleep(self, seconds: float) -> bool:
        """Wait; False if the stage was interrupted (before or during the wait)."""

    async def sleep_until(self, deadline: float) -> bool:
        """`sleep` until the `time.monotonic()` deadline."""

    async def end_link(self) -> None:
        """End this direction here, from inside the stage's own processing."""

    def close_link(self) -> None:
        """End this direction here, from outside the processing (timers, removal)."""
