"""The generation accounting of a soak, from what the harness saw outside the service, whatever the
service: the generations the load generator got a 202 for (with the trace each prompt was marked with),
how each ended as its owner reads it through the contract's API after the drain, FAL's log of jobs and
the objects in storage. Pure functions of those reads, so the verdict can be tested on made-up ones.

FAL's log ties each job to its generation by the marker the harness wrote into the prompt, never by
anything the service sends. A generation is submitted twice when FAL saw a second job for it that no
documented retry explains: FAL refused the earlier submit (any non-2xx answer); the service gave the
earlier request up (FAL saw it cancelled, after an attempt timed out); FAL no longer knew it (a 404 on
its status); or FAL's answer to it may never have reached the service (it arrived while a fault on the
`fal` proxy was on), so the service could not know the request id to resume. A request the service
stored before it was killed must be resumed, never submitted anew.

One window no service can close is counted apart: FAL received the submit less than ``IN_FLIGHT_S``
before the service was killed, and had not been asked about it yet (a service polls only a request it
has stored), so the service died before it could store the id it had not yet been given (FAL takes no
idempotency key). Those are ``resubmitted_after_kill_mid_submit``.

An object belongs to a completed generation when its image URL names it (a storage URL of the stack's
bucket and key). The service may also have taken on generations whose 202 never reached the load
generator (it was killed while answering): FAL's log shows their marked prompts, but not their ids, so
objects beyond the acknowledged generations' are orphans only when they outnumber those.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from chaos.run.observations import RequestRecord
from chaos.run.protocol import marked_trace
from chaos.run.runner import link_fal_log

GONE = "gone"  # the API answers 404 for a generation it accepted: it no longer knows it
JOB_KINDS = ("submit", "run")  # FAL calls that create a job
MAX_EXAMPLES = 20
FAULT_EDGE_SLACK_S = 1.0  # an answer in flight when a fal fault began may be the one it swallowed
IN_FLIGHT_S = 1.0  # a submit FAL saw this shortly before a kill: its answer and the id's write died with the service


@dataclass(frozen=True)
class Outcome:
    """How one accepted generation ended, read by its owner through the contract's API after the drain."""

    status: str | None  # completed | failed | GONE; None when never seen terminal
    error: str | None = None
    image_url: str | None = None
    image_object: str | None = None  # "bucket/key" of the stack's storage that the image URL serves


@dataclass
class Ledger:
    """Where every accepted generation ended up, and what FAL and storage hold for them."""

    accepted: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0  # accepted, and not terminal after the drain or gone
    gone: int = 0  # of the lost: the API answers 404 for it
    failed_without_reason: int = 0
    unacknowledged: int = 0  # generations FAL saw a job for whose 202 never reached the load generator
    seen_by_fal: int = 0  # accepted generations FAL's log ties a job to
    submitted_twice: int = 0
    documented_resubmissions: int = 0
    resubmitted_after_kill_mid_submit: int = 0
    stored_objects: int = 0
    orphaned_objects: int = 0  # objects in storage that no acknowledged completed generation's image URL names
    missing_objects: int = 0  # completed generations whose object is not in storage
    objects_unmeasured: str | None = None  # why the objects could not be accounted for, when they could not
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
    """Fill the submitted-twice figures from FAL's log, whose job entries name their ``generation_id``;
    ``kills`` are (time, target), all times unix."""
    cancelled = {e["request_id"] for e in fal_log if e.get("kind") == "cancel" and e.get("request_id")}
    first_poll: dict[str, float] = {}
    for entry in fal_log:
        if entry.get("kind") in ("status", "result") and entry.get("request_id"):
            first_poll[entry["request_id"]] = min(entry["t"], first_poll.get(entry["request_id"], entry["t"]))
    forgotten = {e["request_id"] for e in fal_log
                 if e.get("kind") == "status" and int(e.get("status") or 0) == 404 and e.get("request_id")}
    by_generation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in fal_log:
        if entry.get("kind") in JOB_KINDS and entry.get("generation_id"):
            by_generation[entry["generation_id"]].append(entry)
    ledger.seen_by_fal = len(by_generation)
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


def count_generations(ledger: Ledger, accepted: list[str], outcomes: dict[str, Outcome]) -> None:
    """Fill accepted, completed, failed and lost from the accepted ids and how each ended."""
    accepted_set = set(accepted)
    ledger.accepted = len(accepted_set)
    for generation_id in sorted(accepted_set):
        outcome = outcomes.get(generation_id, Outcome(None))
        if outcome.status == "completed":
            ledger.completed += 1
        elif outcome.status == "failed":
            ledger.failed += 1
            if not (outcome.error or "").strip():
                ledger.failed_without_reason += 1
                _example(ledger.examples, "failed_without_reason", generation_id)
        else:
            ledger.lost += 1
            ledger.gone += outcome.status == GONE
            _example(ledger.examples, "lost", {"generation_id": generation_id, "status": outcome.status})


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


def owned_objects(outcomes: dict[str, Outcome]) -> set[str]:
    """The objects completed generations' image URLs name."""
    return {o.image_object for o in outcomes.values() if o.status == "completed" and o.image_object}


def count_objects(ledger: Ledger, outcomes: dict[str, Outcome], stored: set[str] | None,
                  unreadable: str | None = None) -> None:
    """Orphans both ways: stored objects no completed generation's image URL names, and completed
    generations whose object is not stored. Unmeasured when storage could not be listed (``unreadable``
    says why) or when completed generations' image URLs name no object of the stack's storage."""
    completed = {g: o for g, o in outcomes.items() if o.status == "completed"}
    unnamed = [o.image_url for o in completed.values() if not o.image_object]
    if stored is None:
        ledger.objects_unmeasured = f"the storage emulator could not be listed: {unreadable}"
        return
    if unnamed:
        ledger.objects_unmeasured = (f"{len(unnamed)} of {len(completed)} completed generations' image URLs name no "
                                     f"object of the stack's storage (one is {unnamed[0]!r})")
        return
    ledger.stored_objects = len(stored)
    orphans = sorted(stored - owned_objects(outcomes))
    missing = sorted(g for g, o in completed.items() if o.image_object not in stored)
    ledger.orphaned_objects, ledger.missing_objects = len(orphans), len(missing)
    for key in orphans:
        # a hint only: a generation whose id names the object or a folder of it (services often name objects so)
        named = next((name for name in map(_stem, key.split("/")) if name in outcomes), None)
        outcome = outcomes.get(named or "")
        _example(ledger.examples, "orphaned_objects", {"key": key, "generation_id": named,
                                                       "status": outcome.status if outcome else None,
                                                       "error": outcome.error if outcome else None})
    for generation_id in missing:
        _example(ledger.examples, "missing_objects", {"generation_id": generation_id,
                                                      "object": completed[generation_id].image_object})


def link_jobs(fal_log: list[dict[str, Any]], accepted: dict[str, str]) -> list[dict[str, Any]]:
    """FAL's log with each entry tied to the accepted generation (id -> trace) whose marked prompt it
    served, as `genchaos run` ties them; times stay unix."""
    records = [RequestRecord(t=0.0, status=None, latency_s=0.0, trace_id=trace_id, generation_id=generation_id)
               for generation_id, trace_id in accepted.items()]
    return link_fal_log(fal_log, records, started_at=0.0)


def count_unacknowledged(ledger: Ledger, fal_log: list[dict[str, Any]], accepted: dict[str, str]) -> None:
    """Generations the service took on without the load generator getting their 202: FAL saw a job for
    a marked prompt that no accepted generation carried."""
    marked = {marked_trace(e.get("prompt")) for e in fal_log if e.get("kind") in JOB_KINDS}
    ledger.unacknowledged = len(marked - {None} - set(accepted.values()))


def account(accepted: dict[str, str], outcomes: dict[str, Outcome], fal_log: list[dict[str, Any]],
            stored: set[str] | None, fal_fault_windows: list[tuple[float, float]], kills: list[tuple[float, str]],
            storage_unreadable: str | None = None) -> Ledger:
    """The ledger of a soak: ``accepted`` maps each accepted generation to the trace its prompt was marked
    with; ``stored`` is None when storage could not be listed (``storage_unreadable`` says why)."""
    ledger = Ledger()
    count_generations(ledger, list(accepted), outcomes)
    count_unacknowledged(ledger, fal_log, accepted)
    count_submissions(ledger, link_jobs(fal_log, accepted), fal_fault_windows, kills)
    count_objects(ledger, outcomes, stored, storage_unreadable)
    return ledger
