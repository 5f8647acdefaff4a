"""How a client speaks to the generation API, shared by `genchaos run` (httpx, asyncio) and Locust
(FastHttpUser, gevent) so both send the same requests and record them the same way. Each engine
keeps its own HTTP client and sleeps; the functions here only build requests and read responses
(anything with ``status_code``, ``headers``, ``json()`` and ``text``).
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol

from chaos.run.observations import TERMINAL_STATUSES, RequestRecord

GENERATIONS_PATH = "/api/v1/generations"
REPLAY_EVERY = 4  # every 4th generation carries an Idempotency-Key and, once accepted, is sent again
DETAIL_CHARS = 200


class Response(Protocol):
    """What both engines' responses offer."""

    status_code: int
    headers: Any
    text: str

    def json(self) -> Any: ...


def generation_path(generation_id: str) -> str:
    return f"{GENERATIONS_PATH}/{generation_id}"


def new_trace_id() -> str:
    return secrets.token_hex(16)


def traceparent(trace_id: str) -> str:
    """A sampled W3C trace context for one request (a fresh span) of the given trace."""
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def replays(sequence: int) -> bool:
    """Whether the generation with this 0-based sequence number is sent again with its key."""
    return sequence % REPLAY_EVERY == REPLAY_EVERY - 1


def request_body(model_id: str, trace_id: str) -> dict[str, str]:
    """The POST body; the prompt names the trace, so FAL's log can be read against the traces."""
    return {"model_id": model_id, "prompt": f"genchaos {trace_id[:8]}"}


def headers(token: str, trace_id: str, *, idempotent: bool = False) -> dict[str, str]:
    """Auth and a fresh span of the trace; an idempotent request's key is derived from its trace."""
    values = {"Authorization": f"Bearer {token}", "traceparent": traceparent(trace_id)}
    if idempotent:
        values["Idempotency-Key"] = f"genchaos-{trace_id}"
    return values


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


def _header(response: Response, name: str) -> str | None:
    return response.headers.get(name) if response.headers else None


def record_submission(record: RequestRecord, response: Response) -> None:
    """Fill ``record`` from the answer to its POST: status, error detail, Retry-After, the 503's
    reason, and the new generation's id when accepted."""
    record.status = response.status_code
    record.detail = error_detail(response)
    record.retry_after = _header(response, "retry-after")
    record.reason_503 = _header(response, "x-genchaos-503-reason")
    body = _json(response) if response.status_code == 202 else None
    record.generation_id = body.get("id") if isinstance(body, dict) else None


def record_terminal(record: RequestRecord, body: Any, at: float) -> bool:
    """Fill ``record`` from a GET of its generation if that is terminal (seen ``at``); True if so."""
    if not isinstance(body, dict) or body.get("status") not in TERMINAL_STATUSES:
        return False
    record.final_status = body["status"]
    record.terminal_t = at
    record.error = body.get("error")
    record.image_url = body.get("image_url")
    return True


def replay_verdict(response: Response | None, generation_id: str) -> bool | None:
    """Whether an accepted POST sent again with its Idempotency-Key brought back the same generation;
    None when the replay itself failed (no answer, or a 5xx), which says nothing about idempotency."""
    if response is None or not response.status_code or response.status_code >= 500:
        return None
    if response.status_code not in (200, 202):
        return False
    body = _json(response)
    return isinstance(body, dict) and body.get("id") == generation_id
