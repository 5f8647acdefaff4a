"""timeout: drops every byte; closes the connection after `timeout` ms without data.

`timeout` 0 never closes. Removing the toxic closes the connection, because the dropped
bytes would otherwise leave a corrupt stream.
"""

import asyncio
from dataclasses import dataclass

from .base import Toxic


class _Timer:
    __slots__ = ("handle",)

    def __init__(self) -> None:
        self.handle: asyncio.TimerHandle | None = None


@dataclass
class TimeoutToxic(Toxic):
    type_name = "timeout"
    go_name = "TimeoutToxic"
    timeout: int = 0

    def new_state(self):
        return _Timer()

    def _arm(self, stage) -> None:
        self.on_stop(stage)
        if self.timeout > 0:
            stage.state.handle = asyncio.get_running_loop().call_later(
                self.timeout / 1000, stage.close_link)

    def on_start(self, stage):
        self._arm(stage)

    def on_stop(self, stage):
        if stage.state.handle is not None:
            stage.state.handle.cancel()
            stage.state.handle = None

    async def pipe(self, stage, chunk):
        self._arm(stage)

    def on_remove(self, stage):
        stage.close_link()
