"""The durable worker: Postgres rows are the queue, leases make a crash (even kill -9) lose nothing.

A claimed generation is leased to this process (owner + expiry) and the lease is renewed while the
work runs; an expired lease makes the row claimable again, by this replica or another. The fal
request id is stored right after submit, so a restarted worker polls that request instead of
submitting a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime

from opentelemetry import trace

from service.breaker import BreakerOpenError
from service.errors import GenerationFailed
from service.fal_gateway import image_url_from_output
from service.logs import generation_id_var, user_id_var
from service.object_cleanup import ObjectCleanup
from service.resilience import FalJob, LeaseLost, ResilienceProfile
from service.storage_gateway import object_path
from service.telemetry import links_to, tracer

log = logging.getLogger(__name__)


def fal_arguments(row: dict) -> dict:
    """The FAL input of a generation: its parameters plus prompt, negative prompt and reference image."""
    arguments = dict(row["parameters"] or {})
    arguments["prompt"] = row["prompt"]
    if row["negative_prompt"]:
        arguments["negative_prompt"] = row["negative_prompt"]
    if row["reference_image_url"]:
        arguments["image_url"] = row["reference_image_url"]
    return arguments


class Worker:
    """Claims generations and runs at most `concurrency` of them at once."""

    def __init__(self, profile: ResilienceProfile) -> None:
        self.profile = profile
        self.deps = profile.deps
        self.settings = profile.deps.settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._in_flight: dict[asyncio.Task, dict] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self.cleanup = ObjectCleanup(self.deps.db, self.deps.storage)

    def notify(self) -> None:
        """A new generation was accepted: look for work now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Claim until `stop()`; database errors only delay the next claim. The orphan sweep runs beside."""
        sweep = asyncio.create_task(self.cleanup.run(), name="orphan-sweep")
        try:
            await self._claim_until_stopped()
        finally:
            sweep.cancel()
            await asyncio.gather(sweep, return_exceptions=True)

    async def _claim_until_stopped(self) -> None:
        while not self._stopping.is_set():
            free = self.settings.worker_concurrency - len(self._in_flight)
            claimed = []
            if free > 0:
                try:
                    claimed = await self._claim(free)
                except Exception as error:
                    log.warning("claim failed", extra={"dependency": "database", "error": repr(error)})
            for row in claimed:
                task = asyncio.create_task(self._process(row), name=f"generation-{row['id']}")
                self._in_flight[task] = row
                task.add_done_callback(self._finished)
            if not claimed or len(self._in_flight) >= self.settings.worker_concurrency:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.settings.worker_poll_interval_s)
                except TimeoutError:
                    pass

    async def _claim(self, free: int) -> list[dict]:
        """Claim up to ``free`` generations; a span only when something was claimed (idle polls are noise)."""
        started = time.time_ns()
        busy = [row["id"] for row in self._in_flight.values()]
        claimed = await self.deps.db.claim(self.owner, free, self.settings.lease_duration_s, busy)
        for row in claimed:
            span = tracer.start_span("generation.claim", start_time=started, links=links_to(row.get("traceparent")),
                                     attributes={"genchaos.generation_id": str(row["id"])})
            span.end()
        return claimed

    def _finished(self, task: asyncio.Task) -> None:
        self._in_flight.pop(task, None)
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming; give in-flight work the grace period, then give the rest back to the queue."""
        self._stopping.set()
        self._wake.set()
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=self.settings.shutdown_grace_s)
        leftover = dict(self._in_flight)
        for task in leftover:
            task.cancel()
        await asyncio.gather(*leftover, self.cleanup.stop(), return_exceptions=True)
        for row in leftover.values():
            try:
                await self.deps.db.release(row["id"], self.owner)
            except Exception as error:  # the lease will expire and the row be reclaimed anyway
                log.warning("could not release lease", extra={"generation_id": str(row["id"]), "error": repr(error)})

    async def _process(self, row: dict) -> None:
        generation_id_var.set(str(row["id"]))
        user_id_var.set(str(row["user_id"]))
        heartbeat = asyncio.create_task(self._heartbeat(row["id"], asyncio.current_task()))
        with tracer.start_as_current_span(
                "generation.process", kind=trace.SpanKind.CONSUMER, links=links_to(row.get("traceparent")),
                attributes={"genchaos.generation_id": str(row["id"]), "genchaos.attempts": row["attempts"],
                            "genchaos.resumed_fal_request": row["fal_request_id"] is not None}):
            try:
                await self._generate(row)
            except Exception as error:  # e.g. the database died while finishing; the expired lease brings it back
                log.warning("generation interrupted; it will be claimed again", extra={"error": repr(error)})
            finally:
                heartbeat.cancel()

    async def _heartbeat(self, generation_id: uuid.UUID, work: asyncio.Task) -> None:
        """Renew the lease every third of its duration; cancel the work if the lease was lost."""
        lease_s = self.settings.lease_duration_s
        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                if not await self.deps.db.renew_lease(generation_id, self.owner, lease_s):
                    log.warning("lease lost; abandoning generation")
                    work.cancel()
                    return
            except Exception as error:
                log.warning("lease renewal failed", extra={"dependency": "database", "error": repr(error)})

    async def _generate(self, row: dict) -> None:
        db = self.deps.db
        generation_id = row["id"]
        started_at: datetime = row["started_at"]
        elapsed = (datetime.now(UTC) - started_at).total_seconds()
        job = FalJob(
            generation_id=str(generation_id), arguments=fal_arguments(row), fal_request_id=row["fal_request_id"],
            save_request_id=lambda request_id: db.save_fal_request_id(generation_id, self.owner, request_id),
            deadline_at=time.monotonic() + self.settings.generation_deadline_s - elapsed)
        uploading: str | None = None  # the object path once an upload was tried
        try:
            with tracer.start_as_current_span("generation.fal"):
                output = await self.profile.fal_output(job)
            url = image_url_from_output(output)
            with tracer.start_as_current_span("generation.download"):
                image = await self.profile.with_retries("fal", lambda: self.deps.fal.download(url), job)
            path = object_path(str(row["user_id"]), str(generation_id))
            uploading = path
            with tracer.start_as_current_span("generation.upload"):
                await self.profile.with_retries("storage", lambda: self.deps.storage.upload_png(path, image), job)
                signed = await self.profile.with_retries("storage", lambda: self.deps.storage.signed_url(path), job)
        except BreakerOpenError as error:
            if job.deadline_at - time.monotonic() > error.retry_after_s:
                log.info("fal breaker open; generation goes back to the queue", extra={"dependency": "fal"})
                await db.release(generation_id, self.owner, delay_s=error.retry_after_s)
                return
            await self._finish_failed(row, f"AI generation service unavailable: {error}", uploading)
        except LeaseLost as error:
            log.warning("generation left to the claim that holds its lease now", extra={"error": str(error)})
        except Exception as error:
            reason = str(error) if isinstance(error, GenerationFailed) else f"{type(error).__name__}: {error}"
            await self._finish_failed(row, reason[:500], uploading)
        else:
            with tracer.start_as_current_span("generation.finalize"):
                completed = await db.complete(generation_id, self.owner, path, signed)
            if completed:
                self._count_terminal(row, "completed")
                log.info("generation completed", extra={"status": "completed"})

    async def _finish_failed(self, row: dict, reason: str, uploaded_path: str | None = None) -> None:
        trace.get_current_span().set_status(trace.StatusCode.ERROR, reason[:200])
        # An upload tried, or an earlier claim (killed after its upload) may have left the object this one
        # never got to write: recorded with the failure, removed once the row is final (a retried claim
        # would upload again).
        orphan = uploaded_path or (object_path(str(row["user_id"]), str(row["id"])) if row["attempts"] > 1 else None)
        with tracer.start_as_current_span("generation.finalize"):
            failed = await self.deps.db.fail(row["id"], self.owner, reason, orphan_path=orphan)
        if failed:
            if orphan is not None:
                self.cleanup.remove_later(row["id"], orphan)
            self._count_terminal(row, "failed")
            log.warning("generation failed", extra={"status": "failed", "error": reason})

    def _count_terminal(self, row: dict, status: str) -> None:
        metrics = self.deps.metrics
        metrics.generations.labels(status).inc()
        duration = (datetime.now(UTC) - row["created_at"]).total_seconds()
        metrics.generation_duration.labels(status).observe(duration)
