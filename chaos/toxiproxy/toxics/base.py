"""What every toxic is: a set of integer attributes and hooks the link calls.

A toxic type is a dataclass whose fields are its JSON attributes (all integers, zero by
default). The link runs `pipe` for each chunk that reaches an active stage; the stage is
seen through `ToxicStub`: `forward` (pass a chunk on), `sleep` (wait, cut short when the
stage is interrupted) and `end_link` (end this direction here).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ..stream import Chunk
from .stub import ToxicStub


@dataclasses.dataclass
class Toxic:
    type_name: ClassVar[str] = ""
    go_name: ClassVar[str] = ""
    """The Go struct name, which appears in Go's decoding errors."""
    int_kind: ClassVar[str] = "int64"
    """The Go integer type of the attributes (slicer uses `int`)."""
    buffer_chunks: ClassVar[int] = 0
    """How many chunks may wait in front of this toxic (latency keeps reading ahead)."""

    @classmethod
    def attribute_names(cls) -> list[str]:
        return [field.name for field in dataclasses.fields(cls)]

    def attributes(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def new_state(self):
        """Per-connection state that survives updates of the toxic (limit_data's count)."""
        return None

    async def pipe(self, stage: ToxicStub, chunk: Chunk) -> None:
        await stage.forward(chunk)

    async def on_end(self, stage: ToxicStub) -> None:
        """End of stream reached this stage; return to let it travel on."""

    def on_start(self, stage: ToxicStub) -> None:
        """The stage (re)started with this toxic active."""

    def on_stop(self, stage: ToxicStub) -> None:
        """The active stage stops (interrupted, removed or its connection closed)."""

    def on_remove(self, stage: ToxicStub) -> None:
        """The toxic was removed from a live connection, whatever its toxicity draw."""
