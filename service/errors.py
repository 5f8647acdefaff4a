"""The service's typed errors and how each becomes a 503 (reasons and sentences per docs/architecture.md)."""

from __future__ import annotations

import math
from enum import Enum


class Reason(str, Enum):
    """Why a request got a 503; sent in `X-Genchaos-503-Reason` and counted by reason."""

    BREAKER_OPEN = "breaker_open"
    OVERLOADED = "overloaded"
    DATABASE_UNAVAILABLE = "database_unavailable"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    FAL_UNAVAILABLE = "fal_unavailable"


HIGH_LOAD = "AI generation service is experiencing high load. Please try again in a few minutes."

MESSAGES: dict[Reason, str] = {
    Reason.BREAKER_OPEN: HIGH_LOAD,
    Reason.OVERLOADED: HIGH_LOAD,
    Reason.DATABASE_UNAVAILABLE: "Database service temporarily unavailable. Please try again later.",
    Reason.STORAGE_UNAVAILABLE: "File storage service temporarily unavailable. Please try again later.",
    Reason.FAL_UNAVAILABLE: "AI generation service temporarily unavailable. Please try again later.",
}

REASON_HEADER = "X-Genchaos-503-Reason"

DEPENDENCY_REASONS: dict[str, Reason] = {
    "database": Reason.DATABASE_UNAVAILABLE,
    "storage": Reason.STORAGE_UNAVAILABLE,
    "fal": Reason.FAL_UNAVAILABLE,
}


class ServiceUnavailable(Exception):
    """Raised anywhere in a request to answer 503 with the reason's sentence and a Retry-After."""

    def __init__(self, reason: Reason, retry_after_s: float) -> None:
        super().__init__(MESSAGES[reason])
        self.reason = reason
        self.retry_after_s = retry_after_s

    @property
    def message(self) -> str:
        return MESSAGES[self.reason]

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s))), REASON_HEADER: self.reason.value}


class DependencyUnavailable(Exception):
    """A dependency (database, fal or storage) could not be used; raised `from` the original error."""

    def __init__(self, dependency: str, detail: str = "") -> None:
        super().__init__(f"{dependency} unavailable: {detail}" if detail else f"{dependency} unavailable")
        self.dependency = dependency


class Overloaded(Exception):
    """Too many generations are waiting; the hardened profile sheds new ones."""


class UserLimitReached(Exception):
    """This user already has as many unfinished generations as one user may (hardened profile): a 429, so
    that one client's flood is refused on its own and everyone else keeps their share of the queue."""


class PoolExhausted(Overloaded):
    """Every database connection of the pool is busy: the service is overloaded, the database is not down."""


class GenerationFailed(Exception):
    """A generation ended in a way retrying cannot fix (e.g. the model rejected the input)."""


class IdempotencyConflict(Exception):
    """An Idempotency-Key was reused by the same user for a different request body."""


def reason_from_message(error: BaseException) -> Reason:
    """The report profile's mapping: look for words in the error text, first match wins.

    This reproduces the report's approach, including its weakness: a FAL error whose text says
    "connection" is reported as a database outage.
    """
    text = str(error).lower()
    if "database" in text or "connection" in text:
        return Reason.DATABASE_UNAVAILABLE
    if "storage" in text or "bucket" in text:
        return Reason.STORAGE_UNAVAILABLE
    return Reason.FAL_UNAVAILABLE


def reason_from_type(error: BaseException) -> Reason | None:
    """The hardened profile's mapping: by exception type only; None means "not a 503"."""
    if isinstance(error, DependencyUnavailable):
        return DEPENDENCY_REASONS[error.dependency]
    if isinstance(error, Overloaded):
        return Reason.OVERLOADED
    return None
