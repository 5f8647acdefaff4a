"""A small HTTP/1.x server on asyncio streams that answers the way Go's net/http server does.

Toxiproxy's API is a Go `http.Server`; clients (and anything probing the port) see its manners,
so this server keeps them: how a head is read and refused (`httprequest`), how bodies are read
(`httpbody`), Toxiproxy's read, write and idle timeouts, 100-continue and 417, HTTP/1.0
answers, which unread body is drained to keep a connection and which closes it, and Go's
header order. Each connection is its own task, so a slow client never holds up another.
"""

from __future__ import annotations

import asyncio
import http
import logging
import posixpath
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate

from .connreader import ConnReader
from .httpbody import BodyReader, BodyReadError
from .httprequest import Refusal, RequestHead, SilentClose, read_request_head

log = logging.getLogger("chaos.toxiproxy")

MAX_BODY_BYTES = 16 << 20
"""Our own bound on a request body (Toxiproxy has none); beyond it the body read fails."""
_MAX_POST_HANDLER_READ = 256 << 10
"""Go's maxPostHandlerReadBytes: unread body drained after a handler to keep the connection."""
_RST_AVOIDANCE_DELAY_S = 0.5
_EXPECT_CONTINUE = re.compile(rb"(?:\A|[ ,\t])100-continue(?:\Z|[ ,\t])", re.IGNORECASE)


@dataclass(frozen=True)
class GoServerTimeouts:
    """Toxiproxy's http.Server: ReadTimeout 15 s (head and body), WriteTimeout 30 s, IdleTimeout 60 s."""

    read_s: float = 15.0
    write_s: float = 30.0
    idle_s: float = 60.0


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
    """One request as a handler sees it; the body is read (and 100 Continue sent) on first use."""

    def __init__(self, head: RequestHead, body_reader: BodyReader, writer: asyncio.StreamWriter) -> None:
        self.head = head
        self.method = head.method
        self.path = head.path
        self.query = head.query
        self.headers = {name.lower(): values[0] for name, values in head.headers.items()}
        self._body_reader = body_reader
        self._writer = writer
        self.continue_pending = head.is_http11 and head.content_length != 0 and expects_continue(head)
        """The client waits for `100 Continue`, sent when the body is first read."""
        self._body: bytes | None = None
        self.body_attempted = False
        self.close_after = False
        """Set when the connection cannot carry another request after this one."""

    @property
    def body_complete(self) -> bool:
        return self._body_reader.done

    async def body(self) -> bytes:
        """The whole body, or BodyReadError carrying Go's text (the connection then closes)."""
        if self._body is None:
            self.body_attempted = True
            if self.continue_pending:
                self._writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.continue_pending = False
            try:
                self._body = await self._read_limited()
            except BodyReadError:
                self.close_after = True
                raise
        return self._body

    async def _read_limited(self) -> bytes:
        declared = self.head.content_length
        if declared is not None and declared > MAX_BODY_BYTES:
            raise BodyReadError("http: request body too large")
        data = await self._body_reader.read(MAX_BODY_BYTES + 1)
        if not self._body_reader.done:
            raise BodyReadError("http: request body too large")
        return data

    async def drain_unread_body(self) -> str:
        """Go's post-handler drain: 'ok', 'failed' (close) or 'too big' (close after a FIN)."""
        declared = self.head.content_length
        if declared is not None and declared >= _MAX_POST_HANDLER_READ:
            return "too big"
        try:
            await self._body_reader.read(_MAX_POST_HANDLER_READ + 1)
        except BodyReadError:
            return "failed"
        return "ok" if self._body_reader.done else "too big"


Handler = Callable[[Request], Awaitable[Response]]


def expects_continue(head: RequestHead) -> bool:
    """Go's expectsContinue: `100-continue` as a token of the first Expect value."""
    return _EXPECT_CONTINUE.search(head.first("Expect").encode("latin-1")) is not None


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


def _status_line(status: int, http11: bool) -> str:
    version = "HTTP/1.1" if http11 else "HTTP/1.0"
    try:
        return f"{version} {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{version} {status:03d} status code {status}"


def _go_addr(address) -> str:
    """Go's TCPAddr.String: IPv6 in brackets, IPv4-mapped addresses as IPv4."""
    host, port = address[0], address[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:"):]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HttpServer:
    """Serves `handler` for every well-formed request on `host:port`."""

    def __init__(self, handler: Handler, timeouts: GoServerTimeouts | None = None) -> None:
        self._handler = handler
        self.timeouts = timeouts or GoServerTimeouts()
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task] = set()

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)

    async def _serve(self, stream: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._clients.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await self._serve_requests(ConnReader(stream), writer)
        except (ConnectionError, TimeoutError, asyncio.CancelledError):
            pass
        except Exception:  # a defect: Go's server also just drops the connection after a panic
            log.exception("serving an API connection failed")
        finally:
            self._clients.discard(task)
            writer.close()

    async def _serve_requests(self, reader: ConnReader, writer: asyncio.StreamWriter) -> None:
        timeout_text = (f"read tcp {_go_addr(writer.get_extra_info('sockname'))}->"
                        f"{_go_addr(writer.get_extra_info('peername'))}: i/o timeout")
        after_post = False
        first = True
        while True:
            if not first:  # Go waits (idle timeout) for 4 bytes before the read timeout starts
                reader.set_deadline(self.timeouts.idle_s)
                if len(await reader.peek(4)) < 4:
                    return
            first = False
            reader.set_deadline(self.timeouts.read_s)
            try:
                head = await read_request_head(reader, after_post)
            except SilentClose:
                return
            except Refusal as refusal:
                await self._write(writer, refusal.wire)
                if refusal.close_write_and_wait:
                    await self._close_write_and_wait(writer)
                return
            after_post = head.method == "POST"
            request = Request(head, BodyReader(reader, head.content_length, timeout_text), writer)
            if head.first("Expect") and not expects_continue(head):
                response = Response(417, b"", [("Connection", "close")])  # Go's sendExpectationFailed
            else:
                response = await self._handler(request)
            wire, close, close_write_and_wait = await self._finish(request, response)
            await self._write(writer, wire)
            if close_write_and_wait:
                await self._close_write_and_wait(writer)
            if close:
                return

    async def _finish(self, request: Request, response: Response) -> tuple[bytes, bool, bool]:
        """Go's chunkWriter.writeHeader: Connection handling, the unread-body drain, the bytes."""
        head = request.head
        headers = sorted(response.headers, key=lambda item: item[0])
        handler_connection = next((value for name, value in headers if name == "Connection"), "")
        body_allowed = not (100 <= response.status < 200 or response.status in (204, 304))
        is_head = head.method == "HEAD"
        length = len(response.body) if body_allowed and (not is_head or response.body) else None
        close = request.close_after
        extra_connection = ""
        if head.version == (1, 0) and head.has_token("Connection", "keep-alive") and (
                is_head or length is not None or not body_allowed):
            if not handler_connection:
                extra_connection = "keep-alive"
        elif not head.is_http11 or head.has_token("Connection", "close"):
            close = True
        if handler_connection == "close" or request.continue_pending:
            close = True
        too_big = False
        if head.content_length != 0 and not close and not request.body_attempted:
            outcome = await request.drain_unread_body()
            close = outcome != "ok"
            too_big = outcome == "too big"
        if too_big:
            headers = [item for item in headers if item[0] != "Connection"]
            extra_connection = "close"
        elif close and "close" not in handler_connection.lower():
            headers = [item for item in headers if item[0] != "Connection"]
            if head.is_http11:
                extra_connection = "close"
        lines = [_status_line(response.status, head.is_http11)]
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append(f"Date: {formatdate(usegmt=True)}")
        if length is not None:
            lines.append(f"Content-Length: {length}")
        if extra_connection:
            lines.append(f"Connection: {extra_connection}")
        body = b"" if is_head else response.body
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body, close, too_big

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        """Write within Go's WriteTimeout; a client that stops reading loses its connection."""
        writer.write(data)
        try:
            async with asyncio.timeout(self.timeouts.write_s):
                await writer.drain()
        except TimeoutError:
            writer.transport.abort()
            raise

    @staticmethod
    async def _close_write_and_wait(writer: asyncio.StreamWriter) -> None:
        """Go's closeWriteAndWait: send FIN, give the client time to read, then close."""
        if writer.can_write_eof():
            writer.write_eof()
        await asyncio.sleep(_RST_AVOIDANCE_DELAY_S)
