"""The generation accounting of a soak, from what the harness saw outside the service: the ids the
load generator got a 202 for, the database rows after the drain, FAL's log of submissions and the
objects in storage. Pure functions of those reads, so the verdict can be tested on made-up ones.

A generation is submitted twice when FAL saw a second submit for it that no documented retry
explains. The service documents these retries (README, "The two resilience profiles"): FAL refused
the earlier submit (any non-2xx answer); the service gave the earlier request up (FAL saw it
cancelled, after an attempt timed out); FAL no longer knew it (a 404 on its status); or FAL's answer
to it may never have reached the service (it arrived while a fault on the `fal` proxy was on), so
the service could not know the request id to resume. A request the service stored before it was
killed must be resumed, never submitted anew.

One window no service can close is counted apart: FAL received the submit less than
``IN_FLIGHT_S`` before the service was killed, and had not been asked about it yet (the service
polls only a request it has stored), so the service died before it could store the id it had not yet
been given (FAL takes no idempotency key). Those are ``resubmitted_after_kill_mid_submit``.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TERMINAL = ("completed", "failed")
MAX_EXAMPLES = 20
FAULT_EDGE_SLACK_S = 1.0  # an answer in flight when a fal fault began may be the one it swallowed
IN_FLIGHT_S = 1.0  # a submit FAL saw this shortly before a kill: its answer and the id's write died with the service


@dataclass(frozen=True)
class Row:
    """One generations row, read straight from PostgreSQL after the drain."""

    status: str
    error: str | None = None
    storage_path: str | None = None


@dataclass
class Ledger:
    """Where every accepted generation ended up, and what FAL and storage hold for them."""

    accepted: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0  # accepted, and not terminal after the drain or gone from the database
    gone_from_database: int = 0  # of the lost: no row at all
    failed_without_reason: int = 0
    unacknowledged: int = 0  # rows whose 202 never reached the load generator (the service died answering)
    submitted_twice: int = 0
    documented_resubmissions: int = 0
    resubmitted_after_kill_mid_submit: int = 0
    orphaned_objects: int = 0  # objects in storage that no completed generation owns
    missing_objects: int = 0  # completed generations whose object is not in storage
    examples: dict[str, list[Any]] = field(default_factory=dict)

    def adds_up(self) -> bool:
        return self.accepted == self.completed + self.failed + self.lost


def _example(examples: dict[str, list[Any]], kind: str, item: Any) -> None:
    bucket = examples.setdefault(kind, [])
    if len(bucket) < MAX_EXAMPLES:
        bucket.append(item)


def _ok(entry: dict[str, Any]) -> bool:
    return 200 <= int(entry.get("status") or 0) < 300


def _in_any(t: float, windows: list[tuple[float, float]]) -> bool:
    return any(start - FAULT_EDGE_SLACK_S <= t <= end for start, end in windows)


def resubmission_explained(earlier: dict[str, Any], cancelled: set[str], forgotten: set[str],
                           fal_fault_windows: list[tuple[float, float]]) -> bool:
    """Whether a documented retry explains a submit that followed ``earlier`` for the same generation."""
    request_id = earlier.get("request_id")
    return (not _ok(earlier) or request_id in cancelled or request_id in forgotten
            or _in_any(earlier["t"], fal_fault_windows))


def _killed_before_storing(earlier: dict[str, Any], kills: list[tuple[float, str]], first_poll: float) -> bool:
    """The service was killed within IN_FLIGHT_S after FAL got ``earlier`` and before FAL was asked about
    it: a request the service polled was stored, and a stored request must be resumed."""
    return any(target == "service" and earlier["t"] <= t <= earlier["t"] + IN_FLIGHT_S and t < first_poll
               for t, target in kills)


def count_submissions(ledger: Ledger, fal_log: list[dict[str, Any]], fal_fault_windows: list[tuple[float, float]],
                      kills: list[tuple[float, str]]) -> None:
    """Fill the submitted-twice figures from FAL's log; ``kills`` are (time, target), all times unix."""
    cancelled = {e["request_id"] for e in fal_log if e.get("kind") == "cancel" and e.get("request_id")}
    first_poll: dict[str, float] = {}
    for entry in fal_log:
        if entry.get("kind") in ("status", "result") and entry.get("request_id"):
            first_poll[entry["request_id"]] = min(entry["t"], first_poll.get(entry["request_id"], entry["t"]))
    forgotten = {e["request_id"] for e in fal_log
                 if e.get("kind") == "status" and int(e.get("status") or 0) == 404 and e.get("request_id")}
    by_generation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in fal_log:
        if entry.get("kind") == "submit" and entry.get("generation_id"):
            by_generation[entry["generation_id"]].append(entry)
    for generation_id, submits in by_generation.items():
        submits.sort(key=lambda e: e["t"])
        for earlier, later in itertools.pairwise(submits):
            if resubmission_explained(earlier, cancelled, forgotten, fal_fault_windows):
                ledger.documented_resubmissions += 1
                continue
            example = {"generation_id": generation_id, "first_request_id": earlier.get("request_id"),
                       "first_at": earlier["t"], "again_at": later["t"]}
            if _killed_before_storing(earlier, kills, first_poll.get(earlier.get("request_id"), math.inf)):
                ledger.resubmitted_after_kill_mid_submit += 1
                _example(ledger.examples, "resubmitted_after_kill_mid_submit", example)
                continue
            ledger.submitted_twice += 1
            example["killed_in_between"] = [target for t, target in kills if earlier["t"] <= t <= later["t"]]
            _example(ledger.examples, "submitted_twice", example)


def count_generations(ledger: Ledger, accepted: list[str], rows: dict[str, Row]) -> None:
    """Fill accepted, completed, failed and lost from the accepted ids and the rows after the drain."""
    accepted_set = set(accepted)
    ledger.accepted = len(accepted_set)
    ledger.unacknowledged = len(rows.keys() - accepted_set)
    for generation_id in sorted(accepted_set):
        row = rows.get(generation_id)
        if row is None:
            ledger.lost += 1
            ledger.gone_from_database += 1
            _example(ledger.examples, "lost", {"generation_id": generation_id, "status": None})
        elif row.status == "completed":
            ledger.completed += 1
        elif row.status == "failed":
            ledger.failed += 1
            if not (row.error or "").strip():
                ledger.failed_without_reason += 1
                _example(ledger.examples, "failed_without_reason", generation_id)
        else:
            ledger.lost += 1
            _example(ledger.examples, "lost", {"generation_id": generation_id, "status": row.status})


def owned_objects(rows: dict[str, Row]) -> set[str]:
    """The object paths completed generations own."""
    return {row.storage_path for row in rows.values() if row.status == "completed" and row.storage_path}


def count_objects(ledger: Ledger, rows: dict[str, Row], stored: set[str]) -> None:
    """Orphans both ways: stored objects no completed row owns, and completed rows without their object.
    Every row counts as an owner, acknowledged or not: the service finished it either way."""
    orphans = sorted(stored - owned_objects(rows))
    missing = sorted(generation_id for generation_id, row in rows.items()
                     if row.status == "completed" and row.storage_path not in stored)
    ledger.orphaned_objects, ledger.missing_objects = len(orphans), len(missing)
    for key in orphans:
        row = rows.get(Path(key).stem)  # the service names each object <user>/<generation id>.png
        _example(ledger.examples, "orphaned_objects", {"key": key, "row_status": row.status if row else None,
                                                       "row_error": row.error if row else None})
    for generation_id in missing:
        _example(ledger.examples, "missing_objects", generation_id)


def account(accepted: list[str], rows: dict[str, Row], fal_log: list[dict[str, Any]], stored: set[str],
            fal_fault_windows: list[tuple[float, float]], kills: list[tuple[float, str]]) -> Ledger:
    ledger = Ledger()
    count_generations(ledger, accepted, rows)
    count_submissions(ledger, fal_log, fal_fault_windows, kills)
    count_objects(ledger, rows, stored)
    return ledger
