"""The emulator admin API both emulators serve beside their protocol (docs/architecture.md,
"Emulator admin API"): ``GET /_emulator/health``, ``GET /_emulator/requests`` and
``POST /_emulator/reset``, over one bounded request log.

Each emulator decides what a protocol request is: Storage records every request outside
``/_emulator/`` with ``RequestLogMiddleware``; FAL records from its protocol wrapper, because it
logs only protocol calls, stamped on arrival, with the fal request id the call created.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN_PREFIX = "/_emulator"
REQUEST_LOG_LIMIT = 100_000  # oldest entries are dropped beyond this, to bound memory in long load runs
UNTAGGED_KIND = "other"  # the kind of a request whose route carries no ``request_kind`` tag


class RequestLog:
    """Every protocol request, oldest first, as ``GET /_emulator/requests`` reports them."""

    def __init__(self) -> None:
        self._entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG_LIMIT)
        self._lock = threading.Lock()

    def record(
        self, t: float, method: str, path: str, status: int, kind: str, request_id: str | None = None, **extra: Any
    ) -> None:
        """Append one entry; ``extra`` holds an emulator's own fields (FAL's ``generation_id``)."""
        entry = {"t": t, "method": method, "path": path, "status": status, "request_id": request_id, "kind": kind}
        with self._lock:
            self._entries.append(entry | extra)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def request_kind(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Tag a route handler with the request-log kind it serves."""

    def tag(handler: Callable[..., Any]) -> Callable[..., Any]:
        handler.request_kind = kind  # type: ignore[attr-defined]
        return handler

    return tag


class RequestLogMiddleware:
    """Records each response to a protocol route (everything outside ``/_emulator/``) once it is sent,
    including refusals that never reach a handler (auth, validation, unknown routes)."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(f"{ADMIN_PREFIX}/"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            kind = getattr(scope.get("endpoint"), "request_kind", UNTAGGED_KIND)
            self.log.record(time.time(), scope["method"], scope["path"], status, kind)


def _status_ok() -> dict[str, str]:
    """The health answer, and the reset answer of an emulator with no state of its own to report."""
    return {"status": "ok"}


def admin_routes(log: RequestLog, reset: Callable[[], Any] = _status_ok, *extra_routes: BaseRoute) -> Mount:
    """The ``/_emulator`` routes: health, the request log and reset, plus an emulator's own routes.

    ``reset`` is the emulator's own reset, run after the log is cleared; what it returns is the
    JSON answer to ``POST /_emulator/reset``.
    """

    async def health(_: Request) -> Response:
        return JSONResponse(_status_ok())

    async def requests(_: Request) -> Response:
        return JSONResponse(log.entries())

    async def reset_all(_: Request) -> Response:
        log.clear()
        return JSONResponse(reset())

    return Mount(ADMIN_PREFIX, routes=[
        Route("/health", health),
        Route("/requests", requests),
        Route("/reset", reset_all, methods=["POST"]),
        *extra_routes,
    ])
