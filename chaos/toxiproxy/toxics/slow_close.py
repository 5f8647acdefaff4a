"""slow_close: data passes unchanged; the close after end of stream waits `delay` ms."""

from dataclasses import dataclass

from .base import Toxic


@dataclass
class SlowCloseToxic(Toxic):
    type_name = "slow_close"
    go_name = "SlowCloseToxic"
    delay: int = 0

    async def on_end(self, stage):
        await stage.sleep(self.delay / 1000)
