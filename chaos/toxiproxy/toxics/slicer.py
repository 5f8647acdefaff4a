"""slicer: cuts each chunk into pieces of about `average_size` bytes (± `size_variation`),
sending them `delay` microseconds apart."""

import random
from dataclasses import dataclass

from ..stream import Chunk
from .base import Toxic


@dataclass
class SlicerToxic(Toxic):
    type_name = "slicer"
    go_name = "SlicerToxic"
    int_kind = "int"
    average_size: int = 0
    size_variation: int = 0
    delay: int = 0

    def cut(self, start: int, end: int, pieces: list[int]) -> None:
        """Halve [start, end) until pieces are at most average_size + size_variation long."""
        if end - start <= max(self.average_size + self.size_variation, 1):
            pieces.append(end)
            return
        middle = start + (end - start) // 2
        if self.size_variation > 0:
            middle += random.randrange(self.size_variation * 2) - self.size_variation
            middle = min(max(middle, start + 1), end - 1)
        self.cut(start, middle, pieces)
        self.cut(middle, end, pieces)

    async def pipe(self, stage, chunk):
        ends: list[int] = []
        self.cut(0, len(chunk.data), ends)
        start = 0
        for end in ends:
            await stage.forward(Chunk(chunk.data[start:end], chunk.timestamp))
            start = end
            if not await stage.sleep(self.delay / 1_000_000):
                if start < len(chunk.data):
                    await stage.forward(Chunk(chunk.data[start:], chunk.timestamp))
                return
