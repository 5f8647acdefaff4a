"""Queue jobs and their life cycle: IN_QUEUE -> IN_PROGRESS -> COMPLETED, driven by the clock.

A job's fate (succeed, fail, hang) is drawn once, when it is submitted: polling never changes it,
and the same submissions under the same seed end the same way.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass

IN_QUEUE = "IN_QUEUE"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"


class Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"  # ends COMPLETED with an error; the result URL answers that error
    STUCK = "stuck"  # stays IN_PROGRESS until cancelled


@dataclass(frozen=True)
class JobError:
    """How a job that ended badly reports itself: on its status, and as its result's HTTP error."""

    detail: str
    error_type: str
    http_status: int


RUNNER_FAILURE = JobError("Runner disconnected while processing the request", "runner_disconnected", 503)
CANCELLED = JobError("Request was cancelled", "request_cancelled", 400)


@dataclass
class Job:
    request_id: str
    app_id: str  # "owner/alias" (or "namespace/owner/alias"): the part request URLs are built on
    submitted_at: float  # unix seconds
    queue_time_s: float
    processing_time_s: float
    outcome: Outcome
    prompt: str | None
    seed: int
    cancelled_at: float | None = None

    @property
    def started_at(self) -> float:
        return self.submitted_at + self.queue_time_s

    @property
    def finished_at(self) -> float | None:
        """When the job completes (or completed); None while it is stuck."""
        if self.cancelled_at is not None:
            return self.cancelled_at
        if self.outcome is Outcome.STUCK:
            return None
        return self.started_at + self.processing_time_s

    def phase(self, now: float) -> str:
        finished_at = self.finished_at
        if finished_at is not None and now >= finished_at:
            return COMPLETED
        if now < self.started_at:
            return IN_QUEUE
        return IN_PROGRESS

    def error(self) -> JobError | None:
        """Why a completed job has no result, or None if it succeeded."""
        if self.cancelled_at is not None:
            return CANCELLED
        if self.outcome is Outcome.FAILURE:
            return RUNNER_FAILURE
        return None

    def cancel(self, now: float) -> bool:
        """Request cancellation; False if the job had already completed."""
        if self.phase(now) == COMPLETED:
            return False
        self.cancelled_at = now
        return True


class JobStore:
    """Every job by request id, plus the queue order needed for ``queue_position``."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._maybe_queued: OrderedDict[str, Job] = OrderedDict()

    def add(self, job: Job) -> None:
        self._jobs[job.request_id] = job
        self._maybe_queued[job.request_id] = job

    def get(self, request_id: str) -> Job | None:
        return self._jobs.get(request_id)

    def queue_position(self, job: Job, now: float) -> int:
        """How many jobs submitted earlier are still waiting in the queue (fal's 0-based position).

        Jobs found to have left the queue are forgotten here, so the walk stays short.
        """
        ahead = 0
        left_queue = []
        for request_id, other in self._maybe_queued.items():
            if other is job:
                break
            if other.phase(now) == IN_QUEUE:
                ahead += 1
            else:
                left_queue.append(request_id)
        for request_id in left_queue:
            del self._maybe_queued[request_id]
        return ahead
