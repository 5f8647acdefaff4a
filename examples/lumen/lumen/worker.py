"""The background worker: claims queued jobs and turns each into a stored PNG.

Per job, up to LUMEN_RETRIES attempts with a fixed LUMEN_RETRY_DELAY_S pause between them (the
report's retry loop). One attempt = FAL (submit, poll, result, image download) inside the breaker and
the per-attempt timeout, then the upload to storage. Writing the outcome is retried until the database
takes it, so an accepted job is never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from lumen.breaker import Breaker, BreakerOpen
from lumen.config import Config
from lumen.jobs import Jobs
from lumen.upstreams import Fal, FalError, Storage

log = logging.getLogger("lumen.worker")

CONCURRENCY = 4
IDLE_WAIT_S = 1.0


def describe(error: BaseException | None) -> str:
    """For the log: the error as its library wrote it."""
    return (str(error).strip() or type(error).__name__)[:300]


def reason(error: BaseException | None) -> str:
    """For the user: what went wrong, without hosts or internals."""
    if isinstance(error, BreakerOpen):
        return "AI generation service is experiencing high load"
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, FalError):
        return str(error)[:300]
    return f"upstream error ({type(error).__name__})"


class Worker:
    def __init__(self, config: Config, jobs: Jobs, fal: Fal, storage: Storage, breaker: Breaker) -> None:
        self.config = config
        self.jobs = jobs
        self.fal = fal
        self.storage = storage
        self.breaker = breaker
        self.wakeup = asyncio.Event()
        # A running job is refreshed at every attempt; one quiet for longer than an attempt can take is abandoned.
        self.lease_s = config.fal_timeout_s + 3 * config.storage_timeout_s + config.retry_delay_s + 5
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._loop(n), name=f"lumen-worker-{n}") for n in range(CONCURRENCY)]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def poke(self) -> None:
        """A job was just queued: look now instead of at the next idle tick."""
        self.wakeup.set()

    async def _loop(self, n: int) -> None:
        while True:
            try:
                job = await self.jobs.claim(self.lease_s)
            except Exception as error:  # database unreachable: try again later
                log.warning("worker %d: cannot claim a job: %s", n, describe(error))
                await asyncio.sleep(IDLE_WAIT_S)
                continue
            if job is None:
                self.wakeup.clear()
                try:
                    await asyncio.wait_for(self.wakeup.wait(), IDLE_WAIT_S)
                except TimeoutError:
                    pass
                continue
            await self.process(job)

    async def _fal_part(self, model: str, prompt: str) -> bytes:
        image_url = await self.fal.generate(model, prompt)
        return await self.fal.download(image_url)

    async def attempt(self, job: Any) -> str:
        image = await self.breaker.call(
            lambda: asyncio.wait_for(self._fal_part(job["model"], job["prompt"]), self.config.fal_timeout_s))
        return await self.storage.put_png(f"{job['owner_id']}/{job['job_id']}.png", image)

    async def process(self, job: Any) -> None:
        job_id: uuid.UUID = job["job_id"]
        last_error: BaseException | None = None
        for attempt in range(1, self.config.retries + 1):
            await self._touch(job_id)
            try:
                url = await self.attempt(job)
            except Exception as error:
                last_error = error
                log.warning("job %s attempt %d/%d failed: %s", job_id, attempt, self.config.retries,
                            describe(error))
                if attempt < self.config.retries:
                    await asyncio.sleep(self.config.retry_delay_s)
                continue
            await self._record(self.jobs.finish, job_id, url)
            log.info("job %s done", job_id)
            return
        failure = f"Generation failed after {self.config.retries} attempts: {reason(last_error)}"
        await self._record(self.jobs.fail, job_id, failure)
        log.info("job %s failed", job_id)

    async def _touch(self, job_id: uuid.UUID) -> None:
        """Renew the job's lease; a database blip here costs nothing but the renewal."""
        try:
            await self.jobs.touch(job_id)
        except Exception as error:
            log.warning("job %s: cannot renew its lease: %s", job_id, describe(error))

    async def _record(self, write: Any, job_id: uuid.UUID, value: str) -> None:
        while True:
            try:
                await write(job_id, value)
                return
            except Exception as error:
                log.warning("job %s: cannot save the outcome yet: %s", job_id, describe(error))
                await asyncio.sleep(max(self.config.retry_delay_s, 0.5))
