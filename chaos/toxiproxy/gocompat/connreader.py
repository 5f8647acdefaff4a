"""Reading a client connection the way Go's server does: through a buffer, against deadlines.

Go's `net/http` reads requests through a `bufio.Reader` over the connection, with a read
deadline per request and a byte limit while the head is read. What a client sees depends on
those details, so they are kept here: a line cut short by end of input or a deadline still
counts as a line (bufio's `ReadLine`), and the failure surfaces on the next read; once the
peer has closed, the deadline has passed or the limit is spent, every read fails the same way.
"""

from __future__ import annotations

import asyncio

EOF = "eof"
TIMEOUT = "timeout"
LIMIT = "limit"

_READ_SIZE = 65536


class ReadStop(Exception):
    """No more bytes: `reason` is EOF (peer closed or reset), TIMEOUT or LIMIT."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnReader:
    """A buffered reader over an asyncio stream, with a deadline and an optional byte limit."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._peer_closed = False
        self._deadline: float | None = None
        self._limit: int | None = None
        self._taken = 0

    # --- settings -------------------------------------------------------------------------

    def set_deadline(self, seconds_from_now: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = None if seconds_from_now is None else loop.time() + seconds_from_now

    def set_limit(self, limit: int | None) -> None:
        """Allow only `limit` more bytes to be taken (Go's MaxHeaderBytes guard); None lifts it."""
        self._limit = limit
        self._taken = 0

    @property
    def limit_hit(self) -> bool:
        return self._limit is not None and self._taken + self._visible() >= self._limit

    # --- buffering ------------------------------------------------------------------------

    def _visible(self) -> int:
        """How many buffered bytes may be read (the rest lies beyond the limit)."""
        if self._limit is None:
            return len(self._buffer)
        return min(len(self._buffer), max(0, self._limit - self._taken))

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._taken += size
        return data

    async def _fill(self, wanted: int) -> str | None:
        """Buffer until `wanted` bytes are visible; the stop reason if that cannot happen."""
        while self._visible() < wanted:
            if self._limit is not None and len(self._buffer) + self._taken >= self._limit:
                return LIMIT
            if self._peer_closed:
                return EOF
            remaining = None
            if self._deadline is not None:
                remaining = self._deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return TIMEOUT
            try:
                async with asyncio.timeout(remaining):
                    data = await self._stream.read(_READ_SIZE)
            except TimeoutError:
                return TIMEOUT
            except ConnectionError:
                data = b""
            if not data:
                self._peer_closed = True
            self._buffer += data
        return None

    # --- reads ----------------------------------------------------------------------------

    async def peek(self, size: int) -> bytes:
        """Up to `size` bytes without taking them (fewer when input stops first)."""
        await self._fill(size)
        return bytes(self._buffer[:min(size, self._visible())])

    def discard(self, size: int) -> None:
        self._take(min(size, self._visible()))

    async def read_line(self) -> bytes:
        """One line without its `\\n` or `\\r\\n`; a cut-short line is returned as it is."""
        scanned = 0
        while True:
            visible = self._visible()
            end = self._buffer.find(b"\n", scanned, visible)
            if end >= 0:
                line = self._take(end + 1)[:-1]
                return line[:-1] if line.endswith(b"\r") else line
            scanned = visible
            stop = await self._fill(scanned + 1)
            if stop is not None:
                if scanned:
                    return self._take(scanned)
                raise ReadStop(stop)

    async def read_raw_line(self, max_size: int) -> bytes:
        """Bytes up to and including `\\n`, for chunk framing (Go's `bufio.ReadSlice`).

        Raises ReadStop(LIMIT) when no `\\n` comes within `max_size` bytes.
        """
        while True:
            visible = self._visible()
            end = self._buffer.find(b"\n", 0, min(visible, max_size))
            if end >= 0:
                return self._take(end + 1)
            if visible >= max_size:
                raise ReadStop(LIMIT)
            stop = await self._fill(visible + 1)
            if stop is not None:
                raise ReadStop(stop)

    async def read_some(self, max_size: int) -> bytes:
        """Between 1 and `max_size` bytes, as soon as any are there."""
        stop = await self._fill(1)
        if stop is not None:
            raise ReadStop(stop)
        return self._take(min(max_size, self._visible()))

    async def read_exactly(self, size: int) -> bytes:
        stop = await self._fill(size)
        if stop is not None:
            raise ReadStop(stop)
        return self._take(size)

    async def sees_within(self, marker: bytes, size: int) -> bool:
        """Whether `marker` arrives within the next `size` bytes (without taking any)."""
        while True:
            visible = min(self._visible(), size)
            if self._buffer.find(marker, 0, visible) >= 0:
                return True
            if visible >= size or await self._fill(visible + 1) is not None:
                return False
