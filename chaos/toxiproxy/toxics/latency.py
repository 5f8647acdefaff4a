"""latency: delays each chunk by `latency` ms, plus or minus a uniform `jitter` ms.

The delay counts from the chunk's receive time, so back-to-back chunks do not add up and
stacked latency toxics add together.
"""

import random
from dataclasses import dataclass

from .base import Toxic


@dataclass
class LatencyToxic(Toxic):
    type_name = "latency"
    go_name = "LatencyToxic"
    buffer_chunks = 1024
    latency: int = 0
    jitter: int = 0

    def delay_ms(self) -> int:
        if self.jitter > 0:
            return self.latency + random.randrange(self.jitter * 2) - self.jitter
        return self.latency

    async def pipe(self, stage, chunk):
        release = chunk.timestamp + self.delay_ms() / 1000
        if await stage.sleep_until(release):
            chunk.timestamp = release
        await stage.forward(chunk)
