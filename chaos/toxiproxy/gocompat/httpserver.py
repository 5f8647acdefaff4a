"""A small HTTP/1.1 server on asyncio streams with Go net/http and gorilla/mux manners.

Only what Toxiproxy's API needs: keep-alive, Content-Length and chunked request bodies,
`Expect: 100-continue`, path cleaning with a 301, 404 `404 page not found`, 405 with an
empty body, and `400 Bad Request` for malformed requests.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import unquote

MAX_HEADER_BYTES = 1 << 20
MAX_BODY_BYTES = 16 << 20
IDLE_TIMEOUT_S = 60.0
READ_TIMEOUT_S = 15.0

_REASONS = {200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently",
            400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
            503: "Service Unavailable"}
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


class BodyTooLarge(Exception):
    pass


class _BadRequest(Exception):
    pass


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        """Go's http.Error: plain text, nosniff, trailing newline."""
        return cls(status, (text + "\n").encode(),
                   [("Content-Type", "text/plain; charset=utf-8"),
                    ("X-Content-Type-Options", "nosniff")])

    @classmethod
    def json(cls, status: int, body: str, content_type: str = "application/json") -> Response:
        return cls(status, body.encode(), [("Content-Type", content_type)])


class Request:
    def __init__(self, method: str, path: str, query: str, headers: dict[str, str],
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self._reader = reader
        self._writer = writer
        self._body: bytes | None = None
        self.body_complete = not self._has_body()
        self.close_after = False
        """Set when the body was left half read: the connection cannot carry another request."""

    def _has_body(self) -> bool:
        return ("chunked" in self.headers.get("transfer-encoding", "").lower()
                or self.headers.get("content-length", "0").strip() not in ("", "0"))

    async def body(self) -> bytes:
        """The whole request body (read once, on first use)."""
        if self._body is None:
            if not self.body_complete and self.headers.get("expect", "").lower() == "100-continue":
                self._writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._body = await self._read_body()
            self.body_complete = True
        return self._body

    async def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts = []
            total = 0
            while True:
                size_line = await self._reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while (await self._reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    return b"".join(parts)
                total += size
                if total > MAX_BODY_BYTES:
                    raise BodyTooLarge()
                parts.append(await self._reader.readexactly(size))
                await self._reader.readexactly(2)
        length = int(self.headers.get("content-length", "0") or 0)
        if length > MAX_BODY_BYTES:
            raise BodyTooLarge()
        return await self._reader.readexactly(length) if length else b""


Handler = Callable[[Request], Awaitable[Response]]


def clean_path(path: str) -> str:
    """gorilla/mux's cleanPath: path.Clean, rooted, keeping a trailing slash."""
    if not path:
        return "/"
    if not path.startswith("/"):
        path = "/" + path
    cleaned = "/" + posixpath.normpath(path).lstrip("/")
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise _BadRequest() from None
    if not _TOKEN.match(method) or not re.match(r"HTTP/1\.[01]\Z", version) or not target:
        raise _BadRequest()
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise _BadRequest()
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers and key != "content-length" else value
    if version == "HTTP/1.0" and "keep-alive" not in headers.get("connection", "").lower():
        headers["connection"] = "close"
    if "content-length" in headers and not headers["content-length"].isdigit():
        raise _BadRequest()
    return method, target, version, headers


def _split_target(target: str) -> tuple[str, str]:
    if "://" in target:
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    path, _, query = target.partition("?")
    return unquote(path), query


class HttpServer:
    """Serves `handler` for every well-formed request on `host:port`."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task] = set()

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEADER_BYTES)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._clients.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await self._serve_requests(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.CancelledError, TimeoutError, ValueError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()

    async def _serve_requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT_S)
            except asyncio.LimitOverrunError:
                await self._send(writer, Response.text(431, "431 Request Header Fields Too Large"), close=True)
                return
            try:
                method, target, _version, headers = _parse_head(head[:-4])
            except _BadRequest:
                await self._send(writer, Response(400, b"400 Bad Request", [
                    ("Content-Type", "text/plain; charset=utf-8")]), close=True)
                return
            path, query = _split_target(target)
            request = Request(method, path, query, headers, reader, writer)
            response = await self._handler(request)
            close = request.close_after or headers.get("connection", "").lower() == "close"
            if not request.body_complete and not close:
                try:
                    await asyncio.wait_for(request.body(), READ_TIMEOUT_S)
                except BodyTooLarge:
                    close = True
            await self._send(writer, response, close)
            if close:
                return

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, response: Response, close: bool) -> None:
        status = response.status
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"{name}: {value}" for name, value in response.headers]
        lines.append(f"Date: {formatdate(usegmt=True)}")
        if status != 204:
            lines.append(f"Content-Length: {len(response.body)}")
        if close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)
        await writer.drain()
