"""The service's own ASGI middleware, written against ASGI directly: Starlette's BaseHTTPMiddleware runs
every request in a task group of its own, which cost more CPU than the rest of the middleware stack."""

from __future__ import annotations

import time
import uuid

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import request_id_var, user_id_var
from service.metrics import Metrics

MAX_REQUEST_ID_CHARS = 64


class RequestObserver:
    """Tags each request with an id (the client's X-Request-ID, or a new one) for the logs and the
    response, and counts and times it in Prometheus by route template, method and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = (Headers(scope=scope).get("x-request-id") or uuid.uuid4().hex)[:MAX_REQUEST_ID_CHARS]
        request_id_var.set(request_id)
        user_id_var.set(None)
        started = time.monotonic()
        status = 500  # what the client gets if the app raises before it answers

        async def send_tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_tagged)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")  # the router fills in scope["route"]
            self.metrics.http_requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.http_duration.labels(template, scope["method"]).observe(time.monotonic() - started)


class BodySizeLimit:
    """413 for request bodies over the limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": f"Request body too large (limit {self.max_bytes} bytes)."}, 413)
        await response(scope, receive, send)
