"""uvicorn's httptools protocol with a bound on the request head.

httptools (the C parser) keeps a header line, however long, until it is complete, and uvicorn sets no
limit of its own on it (h11 has 16 KB); a client could make the service hold megabytes per connection.
Bytes received while a head is still open are counted, and past MAX_HEAD_BYTES the request is answered
431 and the connection closed, as h11 and Go's net/http do: the write side first, then, after a short
linger that discards what the client still sends, the socket (closing it at once with unread input
would reset the connection and lose the answer).
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024  # request line plus headers; what arrives after the head is the body's business
LINGER_S = 0.5  # how long a refused client's remaining bytes are read and dropped before the close
_TOO_LARGE = b"Request header fields too large"
_REFUSAL = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_TOO_LARGE), _TOO_LARGE))


class BoundedHeadProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses a request head larger than MAX_HEAD_BYTES with 431."""

    _head_open = True
    _head_bytes = 0
    _refused = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._head_open:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_open and self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self._refused = True
            self.transport.write(_REFUSAL)
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
