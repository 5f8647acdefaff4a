"""limit_data: passes at most `bytes` bytes per connection in this direction, then closes."""

from dataclasses import dataclass

from ..stream import Chunk
from .base import Toxic


class _Count:
    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = 0


@dataclass
class LimitDataToxic(Toxic):
    type_name = "limit_data"
    go_name = "LimitDataToxic"
    bytes: int = 0

    def new_state(self):
        return _Count()

    async def pipe(self, stage, chunk):
        count = stage.state
        remaining = max(self.bytes - count.sent, 0)
        data = chunk.data[:remaining] if remaining < len(chunk.data) else chunk.data
        if data:
            count.sent += len(data)
            await stage.forward(Chunk(data, chunk.timestamp))
        if self.bytes - count.sent <= 0:
            await stage.end_link()
