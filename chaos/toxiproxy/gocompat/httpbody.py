"""Request bodies read as Go's net/http reads them, failing with Go's error texts.

A handler sees these texts: Toxiproxy answers `bad request body: <error>`, so a bad chunk
size must read `invalid byte in chunk length` exactly as Go's chunked reader says it.
"""

from __future__ import annotations

from .connreader import EOF, LIMIT, TIMEOUT, ConnReader, ReadStop
from .httprequest import MalformedHeader, read_header_lines

MAX_CHUNK_LINE = 4096
"""Go reads chunk lines through its 4 KiB bufio buffer: longer ones are `header line too long`."""
_MAX_CHUNK_OVERHEAD = 16 * 1024


class BodyReadError(Exception):
    """Reading the body failed; `reason` is Go's error text, `received` what came before it."""

    def __init__(self, reason: str, received: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.received = received


class BodyReader:
    """One request body, Content-Length or chunked, read on demand."""

    def __init__(self, reader: ConnReader, content_length: int | None, timeout_text: str) -> None:
        self._reader = reader
        self._chunked = content_length is None
        self._left = 0 if content_length is None else content_length
        self._timeout_text = timeout_text
        self._chunk_end_pending = False
        self._overhead = 0
        self.done = content_length == 0
        self.failure: BodyReadError | None = None

    async def read(self, limit: int) -> bytes:
        """The body up to `limit` bytes (`done` tells whether that was all of it)."""
        if self.failure is not None:
            raise self.failure
        parts: list[bytes] = []
        size = 0
        try:
            while not self.done and size < limit:
                if self._chunked and self._left == 0:
                    await self._begin_chunk()
                    continue
                data = await self._reader.read_some(min(self._left, limit - size))
                parts.append(data)
                size += len(data)
                self._left -= len(data)
                if self._left == 0:
                    self._chunk_end_pending = self._chunked
                    self.done = not self._chunked
        except ReadStop as stop:
            self.failure = BodyReadError(self._stop_text(stop.reason), b"".join(parts))
        except BodyReadError as failure:
            self.failure = BodyReadError(failure.reason, b"".join(parts))
        if self.failure is not None:
            raise self.failure
        return b"".join(parts)

    def _stop_text(self, reason: str) -> str:
        if reason == TIMEOUT:
            return self._timeout_text
        if reason == LIMIT:
            return "header line too long"
        return "unexpected EOF"

    async def _begin_chunk(self) -> None:
        """Go's chunkedReader.beginChunk, after checking the CRLF that ends the previous chunk."""
        if self._chunk_end_pending:
            if await self._reader.read_exactly(2) != b"\r\n":
                raise BodyReadError("malformed chunked encoding")
            self._chunk_end_pending = False
        line = await self._reader.read_raw_line(MAX_CHUNK_LINE)
        if b"\r" not in line:
            raise BodyReadError("chunked line ends with bare LF")
        if line.index(b"\r") != len(line) - 2:
            raise BodyReadError("invalid CR in chunked line")
        line = line[:-2]
        if len(line) >= MAX_CHUNK_LINE:
            raise BodyReadError("header line too long")
        self._overhead += len(line) + 2
        size = _parse_hex(line.rstrip(b" \t\r\n").split(b";", 1)[0])
        self._overhead = max(0, self._overhead - 16 - 2 * size)
        if self._overhead > _MAX_CHUNK_OVERHEAD:
            raise BodyReadError("chunked encoding contains too much non-data")
        if size == 0:
            await self._read_trailer()
            self.done = True
        self._left = size

    async def _read_trailer(self) -> None:
        """Go's body.readTrailer: usually just CRLF; else a header block within 4 KiB."""
        start = await self._reader.peek(2)
        if start == b"\r\n":
            self._reader.discard(2)
            return
        if len(start) < 2:
            raise BodyReadError("http: unexpected EOF reading trailer")
        if not await self._reader.sees_within(b"\r\n\r\n", MAX_CHUNK_LINE):
            raise BodyReadError("http: suspiciously long trailer after chunked body")
        try:
            await read_header_lines(self._reader)
        except MalformedHeader as failure:
            raise BodyReadError(str(failure)) from None
        except ReadStop as stop:
            raise BodyReadError("http: unexpected EOF reading trailer" if stop.reason == EOF
                                else self._stop_text(stop.reason)) from None


def _parse_hex(digits: bytes) -> int:
    """Go's parseHexUint for chunk sizes (at most 16 hex digits)."""
    if not digits:
        raise BodyReadError("empty hex number for chunk length")
    value = 0
    for index, byte in enumerate(digits):
        if byte not in b"0123456789abcdefABCDEF":
            raise BodyReadError("invalid byte in chunk length")
        if index == 16:
            raise BodyReadError("http chunk length too large")
        value = value * 16 + int(chr(byte), 16)
    return value
