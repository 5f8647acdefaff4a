"""reset_peer: on the first chunk, drops it, waits `timeout` ms, then closes with a TCP RST.

The RST comes from SO_LINGER 0, which the connection sets on both sockets when it starts
with a reset_peer toxic in place (whatever the toxicity draw).
"""

import asyncio
from dataclasses import dataclass

from .base import Toxic


@dataclass
class ResetPeerToxic(Toxic):
    type_name = "reset_peer"
    go_name = "ResetToxic"
    timeout: int = 0

    async def pipe(self, stage, chunk):
        await asyncio.sleep(max(self.timeout, 0) / 1000)
        await stage.end_link()
