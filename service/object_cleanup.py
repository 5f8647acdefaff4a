"""Removal of the objects failed generations may have left in storage, durable across crashes.

An upload whose answer was lost may still have stored the object of a generation that then failed.
The failing update records the path in the row (``orphan_path``) in the same statement that fails it;
the object is removed in the background, retried while storage is down, and the path cleared only
once storage confirmed the removal. A sweep picks up what a killed process left unfinished, so failed
generations leave no orphaned objects even through kill -9.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import tenacity

from service.db import Database
from service.storage_gateway import StorageGateway

log = logging.getLogger(__name__)
REMOVAL_RETRY_S = 120.0  # how long one removal keeps retrying before the sweep takes it up again
SWEEP_INTERVAL_S = 5.0
SWEEP_BATCH = 50


class ObjectCleanup:
    """Removes recorded orphans: each at most once at a time in this process, then forgets it in its row."""

    def __init__(self, db: Database, storage: StorageGateway) -> None:
        self._db = db
        self._storage = storage
        self._removing: dict[uuid.UUID, asyncio.Task] = {}

    def remove_later(self, generation_id: uuid.UUID, path: str) -> None:
        """Start removing a path the row records (see ``Database.fail``), unless already under way."""
        if generation_id in self._removing:
            return
        task = asyncio.create_task(self._remove(generation_id, path), name=f"remove-{generation_id}")
        self._removing[generation_id] = task
        task.add_done_callback(lambda _: self._removing.pop(generation_id, None))

    async def run(self) -> None:
        """Sweep recorded orphans every SWEEP_INTERVAL_S until cancelled; database errors wait for the next."""
        while True:
            try:
                for generation_id, path in await self._db.recorded_orphans(SWEEP_BATCH, list(self._removing)):
                    self.remove_later(generation_id, path)
            except Exception as error:
                log.warning("orphan sweep failed", extra={"dependency": "database", "error": repr(error)})
            await asyncio.sleep(SWEEP_INTERVAL_S)

    async def stop(self) -> None:
        """Cancel removals under way; their rows keep the path for the next process's sweep."""
        tasks = list(self._removing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _remove(self, generation_id: uuid.UUID, path: str) -> None:
        try:
            async for attempt in tenacity.AsyncRetrying(wait=tenacity.wait_exponential(multiplier=0.2, max=5.0),
                                                        stop=tenacity.stop_after_delay(REMOVAL_RETRY_S),
                                                        reraise=True):
                with attempt:
                    await self._storage.remove(path)
                    await self._db.forget_orphan(generation_id, path)
        except Exception as error:
            log.warning("could not remove the object of a failed generation",
                        extra={"dependency": "storage", "error": repr(error)})
