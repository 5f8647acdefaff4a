"""How a client speaks to a service's generation API, as its contract describes it; shared by `genchaos
run` (httpx, asyncio) and Locust (FastHttpUser, gevent) so both send the same requests and record them
the same way. Each engine keeps its own HTTP client and sleeps; this only builds requests and reads
responses (anything with ``status_code``, ``headers``, ``json()`` and ``text``).

Every prompt carries a marker naming its trace, so FAL's own log shows which generation each job served
without any cooperation from the service: any service passes its user's prompt to FAL unchanged.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any, Protocol

from chaos.contract.model import CAUSES, Api, Contract
from chaos.run.observations import RequestRecord

REPLAY_EVERY = 4  # every 4th generation carries an Idempotency-Key and, once accepted, is sent again
DETAIL_CHARS = 200
MARKER_PREFIX = "genchaos-"
MARKER = re.compile(r"genchaos-([0-9a-f]{32})")


class Response(Protocol):
    """What both engines' responses offer."""

    status_code: int
    headers: Any
    text: str

    def json(self) -> Any: ...


def new_trace_id() -> str:
    return secrets.token_hex(16)


def traceparent(trace_id: str) -> str:
    """A sampled W3C trace context for one request (a fresh span) of the given trace."""
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def marker(trace_id: str) -> str:
    """The mark a request's prompt carries: its trace id, found again in FAL's log."""
    return f"{MARKER_PREFIX}{trace_id}"


def marked_trace(prompt: str | None) -> str | None:
    """The trace id a prompt FAL received was marked with; None for a prompt without a mark."""
    found = MARKER.search(prompt or "")
    return found[1] if found else None


def replays(sequence: int) -> bool:
    """Whether the generation with this 0-based sequence number is sent again with its key."""
    return sequence % REPLAY_EVERY == REPLAY_EVERY - 1


def _json(response: Response) -> Any:
    try:
        return response.json()
    except (ValueError, TypeError):
        return None


def error_detail(response: Response) -> str | None:
    """The error body's ``detail`` (FastAPI's shape), else the start of the body; None for no error."""
    if response.status_code < 400:
        return None
    body = _json(response)
    if body is None:
        return (response.text or "")[:DETAIL_CHARS] or None
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else str(detail if detail is not None else body)[:DETAIL_CHARS]


def _header(response: Response, name: str | None) -> str | None:
    return response.headers.get(name) if name and response.headers else None


def _fill(template: Any, values: dict[str, str]) -> Any:
    """The body template with every ``{name}`` string placeholder filled in (nested values too)."""
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace("{" + name + "}", value)
        return template
    if isinstance(template, dict):
        return {key: _fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [_fill(value, values) for value in template]
    return template


class GenerationProtocol:
    """One service's API: where to POST, what to send, how to read what comes back."""

    def __init__(self, contract: Contract) -> None:
        self.api: Api = contract.api
        self.model_id = contract.model_id
        self.cause_header = contract.telemetry.cause_header
        self.idempotent_replays = contract.features.idempotency_keys
        self._sentences = {cause: contract.sentence(cause) for cause in CAUSES}
        self._terminal = {**{s: "completed" for s in self.api.statuses.completed},
                          **{s: "failed" for s in self.api.statuses.failed}}

    @property
    def submit_path(self) -> str:
        return self.api.submit.path

    @property
    def list_path(self) -> str | None:
        return self.api.list.path if self.api.list else None

    def generation_path(self, generation_id: str) -> str:
        return self.api.get.replace("{id}", generation_id)

    def request_body(self, trace_id: str, model_id: str | None = None) -> dict[str, Any]:
        """The POST body; its prompt carries the trace's marker."""
        return _fill(self.api.submit.body, {"model_id": model_id or self.model_id,
                                            "prompt": f"a lighthouse at dusk {marker(trace_id)}"})

    def replays(self, sequence: int) -> bool:
        """Whether this generation is sent again with its Idempotency-Key (only where the service claims keys)."""
        return self.idempotent_replays and replays(sequence)

    @staticmethod
    def headers(token: str, trace_id: str, *, idempotent: bool = False) -> dict[str, str]:
        """Auth and a fresh span of the trace; an idempotent request's key is derived from its trace."""
        values = {"Authorization": f"Bearer {token}", "traceparent": traceparent(trace_id)}
        if idempotent:
            values["Idempotency-Key"] = f"genchaos-{trace_id}"
        return values

    def generation_id(self, body: Any) -> str | None:
        value = body.get(self.api.fields.id) if isinstance(body, dict) else None
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None

    def record_submission(self, record: RequestRecord, response: Response) -> None:
        """Fill ``record`` from the answer to its POST: status, error detail, Retry-After, the 503's cause
        where the contract names a header for it, and the new generation's id when accepted."""
        record.status = response.status_code
        record.detail = error_detail(response)
        record.retry_after = _header(response, "retry-after")
        record.reason_503 = _header(response, self.cause_header)
        record.causes = self.causes(record) if response.status_code == 503 else ()
        accepted = response.status_code in self.api.submit.accepted
        record.generation_id = self.generation_id(_json(response)) if accepted else None

    def causes(self, record: RequestRecord) -> tuple[str, ...]:
        """The causes whose sentence a 503 carries (two for the shared high-load sentence); where the
        contract names a cause header, only the one it names, if the sentence names it too."""
        named = tuple(cause for cause, sentence in self._sentences.items() if sentence == record.detail)
        if self.cause_header is None:
            return named
        return tuple(cause for cause in named if cause == record.reason_503)

    def terminal_status(self, body: Any) -> str | None:
        """completed or failed for a terminal generation body, else None."""
        value = body.get(self.api.fields.status) if isinstance(body, dict) else None
        return self._terminal.get(value) if isinstance(value, str) else None

    def record_terminal(self, record: RequestRecord, body: Any, at: float) -> bool:
        """Fill ``record`` from a GET of its generation if that is terminal (seen ``at``); True if so."""
        status = self.terminal_status(body)
        if status is None:
            return False
        fields = self.api.fields
        record.final_status = status
        record.terminal_t = at
        error = body.get(fields.error)
        record.error = error if isinstance(error, str) or error is None else json.dumps(error)[:DETAIL_CHARS]
        image_url = body.get(fields.image_url)
        record.image_url = image_url if isinstance(image_url, str) else None
        return True

    def listed_ids(self, body: Any) -> list[str] | None:
        """The generation ids a list answer holds; None when it is not the shape the contract says."""
        items = body if self.api.list is None or self.api.list.items is None else (
            body.get(self.api.list.items) if isinstance(body, dict) else None)
        if not isinstance(items, list):
            return None
        return [i for i in map(self.generation_id, items) if i is not None]

    def replay_verdict(self, response: Response | None, generation_id: str) -> bool | None:
        """Whether an accepted POST sent again with its Idempotency-Key brought back the same generation;
        None when the replay itself failed (no answer, or a 5xx), which says nothing about idempotency."""
        if response is None or not response.status_code or response.status_code >= 500:
            return None
        if response.status_code not in (200, *self.api.submit.accepted):
            return False
        return self.generation_id(_json(response)) == generation_id
