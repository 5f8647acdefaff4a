"""bandwidth: limits this direction to `rate` KB/s (1 KB = 1000 bytes), per connection.

Each chunk waits len/rate ms, carrying timer error forward; chunks bigger than 100 ms worth
of data go out in 100 ms pieces. `rate` 0 stalls the stream (empty pieces every 100 ms).
"""

import time
from dataclasses import dataclass

from ..stream import Chunk
from .base import Toxic

_PIECE_INTERVAL_S = 0.1


class _Pacing:
    __slots__ = ("owed_s",)

    def __init__(self) -> None:
        self.owed_s = 0.0


@dataclass
class BandwidthToxic(Toxic):
    type_name = "bandwidth"
    go_name = "BandwidthToxic"
    rate: int = 0

    def new_state(self):
        return _Pacing()

    async def pipe(self, stage, chunk):
        pacing = stage.state
        data = chunk.data
        if self.rate <= 0:
            pacing.owed_s = 0.0
        else:
            pacing.owed_s += len(data) / (self.rate * 1000)
        piece = max(self.rate * 100, 0)
        while len(data) > piece:
            if not await stage.sleep(_PIECE_INTERVAL_S):
                await stage.forward(Chunk(data, chunk.timestamp))
                return
            await stage.forward(Chunk(data[:piece], chunk.timestamp))
            data = data[piece:]
            pacing.owed_s -= _PIECE_INTERVAL_S
        started = time.monotonic()
        if await stage.sleep(pacing.owed_s):
            pacing.owed_s -= time.monotonic() - started
        await stage.forward(Chunk(data, chunk.timestamp))
