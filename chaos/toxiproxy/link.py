"""One direction of one proxied connection: source socket -> toxic stages -> destination.

With no toxic in its direction a link hands both sockets to the fast path (fast_path.py),
which moves bytes inside the kernel. Once a toxic is present, the fast path hands back what
it holds and reads go through the transports: cut into chunks of at most 32 KiB,
timestamped on receipt and queued; one task runs every chunk through the stages in order.
When the last toxic is gone and the queue has drained, the fast path takes over again.
Stages are added, updated and removed in place, so a live stream never loses or reorders a
byte. Backpressure: the source stops being read while the queue is full or, on the direct
path (used until the fast path starts, or where it is unavailable), while the
destination's write buffer is full.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol

from . import fast_path
from .stage import Stage, ToxicSpec
from .stream import Chunk

CHUNK_SIZE = 32 * 1024
QUEUED_CHUNKS = 4
"""Chunks read ahead of the stages; a latency toxic raises this to its own buffer."""

_END = Chunk(b"", 0.0)
"""Queued after the last chunk when the source reaches end of stream."""


class Endpoint(Protocol):
    """The socket side a link reads from or writes to (see connection.py)."""

    transport: asyncio.Transport
    write_paused: bool
    reader: Link | None

    async def drained(self) -> None: ...
    def close(self) -> None: ...


class ByteCounters:
    """Bytes a link read from its source and wrote to its destination (for /metrics)."""

    __slots__ = ("received", "sent")

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0


class Link:
    def __init__(self, source: Endpoint, destination: Endpoint, counters: ByteCounters) -> None:
        self._source = source
        self._destination = destination
        self._counters = counters
        self._stages: list[Stage] = []
        self._queue: deque[Chunk] = deque()
        self._queue_limit = QUEUED_CHUNKS
        self._task: asyncio.Task | None = None
        self._wakeup: asyncio.Future | None = None
        self._input_closed = False
        self._finished = False
        self._reading_paused = False
        self._fast: fast_path.FastPath | None = None
        self._fast_pending = False
        """Waiting for the destination transport to empty before the fast path starts."""

    # --- setup and toxic changes --------------------------------------------------------

    def start(self, specs: list[ToxicSpec]) -> None:
        for spec in specs:
            stage = Stage(spec, self)
            self._stages.append(stage)
            stage.start()
        self._stages_changed()

    def add(self, spec: ToxicSpec) -> None:
        if self._finished:
            return
        held = self._leave_fast_path()
        if self._stages:
            self._stages[-1].restart()
        stage = Stage(spec, self)
        self._stages.append(stage)
        stage.start()
        self._stages_changed()
        if held:
            self._accept(held)

    def update(self, spec: ToxicSpec) -> None:
        for stage in self._stages:
            if stage.spec is spec:
                stage.restart()

    def remove(self, spec: ToxicSpec) -> None:
        for index, stage in enumerate(self._stages):
            if stage.spec is spec:
                del self._stages[index]
                stage.restart()
                stage.stop()
                if index > 0:
                    self._stages[index - 1].restart()
                stage.toxic.on_remove(stage)
                self._stages_changed()
                return

    def _stages_changed(self) -> None:
        buffers = [stage.toxic.buffer_chunks for stage in self._stages]
        self._queue_limit = max(buffers + [QUEUED_CHUNKS])
        if self._stages and self._task is None and not self._finished:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake()
        self._update_reading()

    # --- the fast path ------------------------------------------------------------------

    @property
    def on_fast_path(self) -> bool:
        return self._fast is not None

    def try_fast_path(self) -> None:
        """Hand the sockets to the fast path if no toxic or queued chunk stands in the way."""
        if (not fast_path.AVAILABLE or self._fast is not None or self._stages or self._task is not None
                or self._input_closed or self._finished):
            return
        source, destination = self._source.transport, self._destination.transport
        if source is None or destination is None or source.is_closing() or destination.is_closing():
            return
        source_socket = source.get_extra_info("socket")
        destination_socket = destination.get_extra_info("socket")
        if source_socket is None or destination_socket is None:
            return
        if destination.get_write_buffer_size():
            # Zero limits make the transport call resume_writing the moment it is empty.
            self._fast_pending = True
            destination.set_write_buffer_limits(high=0)
        else:
            if self._fast_pending:
                self._fast_pending = False
                destination.set_write_buffer_limits()
            try:
                self._fast = fast_path.FastPath(source_socket.fileno(), destination_socket.fileno(),
                                                self._counters, self.feed_eof)
            except OSError:  # out of file descriptors: the direct path carries on
                pass
        self._update_reading()

    def _leave_fast_path(self) -> bytes:
        """Take the sockets back; returns the bytes read but not yet written, in order."""
        if self._fast_pending:
            self._fast_pending = False
            transport = self._destination.transport
            if transport is not None and not transport.is_closing():
                transport.set_write_buffer_limits()
        if self._fast is None:
            return b""
        fast, self._fast = self._fast, None
        held = fast.stop()
        self._update_reading()
        return held

    # --- input from the source ----------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._counters.received += len(data)
        self._accept(data)

    def _accept(self, data: bytes) -> None:
        """Pass on bytes already counted as received."""
        if self._input_closed:
            return
        if self._task is None:
            self._write(data)
            return
        now = time.monotonic()
        if len(data) <= CHUNK_SIZE:
            self._queue.append(Chunk(data, now))
        else:
            view = memoryview(data)
            for offset in range(0, len(data), CHUNK_SIZE):
                self._queue.append(Chunk(bytes(view[offset:offset + CHUNK_SIZE]), now))
        self._wake()
        self._update_reading()

    def feed_eof(self) -> None:
        if self._input_closed:
            return
        held = self._leave_fast_path()
        if held:
            self._accept(held)
        self._input_closed = True
        if self._task is None:
            self._finish()
        else:
            self._queue.append(_END)
            self._wake()

    # --- output to the destination -------------------------------------------------------

    def _write(self, data: bytes) -> None:
        transport = self._destination.transport
        if transport.is_closing():  # the connection is ending: nothing more can be delivered
            return
        self._counters.sent += len(data)
        transport.write(data)

    def destination_paused_changed(self) -> None:
        """The destination's write buffer crossed a watermark."""
        if self._fast_pending and not self._destination.write_paused:
            self.try_fast_path()
        else:
            self._update_reading()

    def _update_reading(self) -> None:
        if self._fast is not None or self._fast_pending:
            pause = True
        elif self._task is None:
            pause = self._destination.write_paused
        else:
            pause = len(self._queue) >= self._queue_limit
        if pause == self._reading_paused:
            return
        transport = self._source.transport
        if transport is None or transport.is_closing():
            return
        self._reading_paused = pause
        if pause:
            transport.pause_reading()
        else:
            transport.resume_reading()

    # --- the stage runner ---------------------------------------------------------------

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _run(self) -> None:
        try:
            while not self._finished:
                if not self._queue:
                    if not self._stages:
                        return
                    self._wakeup = asyncio.get_running_loop().create_future()
                    await self._wakeup
                    continue
                chunk = self._queue.popleft()
                self._update_reading()
                if chunk is _END:
                    await self.end_after(-1)
                    return
                await self.pass_on(chunk, after=-1)
        finally:
            if self._task is asyncio.current_task():
                self._task = None
                self.try_fast_path()
                self._update_reading()

    def _next_stage(self, after: int) -> Stage | None:
        for stage in self._stages:
            if stage.seq > after:
                return stage
        return None

    async def pass_on(self, chunk: Chunk, after: int) -> None:
        """Hand `chunk` to the first stage created after `after`, or to the destination."""
        if self._finished:
            return
        stage = self._next_stage(after)
        if stage is not None:
            await stage.handle(chunk)
        elif chunk.data:
            self._write(chunk.data)
            if self._destination.write_paused:
                await self._destination.drained()

    async def end_after(self, after: int) -> None:
        """Carry end of stream through the stages after `after`, then close the destination."""
        self._input_closed = True
        self._queue.clear()
        while (stage := self._next_stage(after)) is not None and not self._finished:
            await stage.handle_end()
            after = stage.seq
        self._finish()

    def close_from(self, after: int) -> None:
        if self._finished:
            return
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.get_running_loop().create_task(self.end_after(after))

    def _finish(self) -> None:
        """This direction is over: close the destination, which ends the other direction."""
        if self._finished:
            return
        self._finished = True
        self._input_closed = True
        for stage in self._stages:
            stage.stop()
        self._destination.close()
        other = self._destination.reader
        if other is not None:
            other.feed_eof()

    def abort(self) -> None:
        """Stop at once, without passing anything on (the proxy was stopped)."""
        self._leave_fast_path()
        self._finished = self._input_closed = True
        for stage in self._stages:
            stage.stop()
        if self._task is not None:
            self._task.cancel()
        self._queue.clear()
