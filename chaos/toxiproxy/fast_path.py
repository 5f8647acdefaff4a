"""The fast path: one direction of a connection with no toxic, moved inside the kernel.

Without toxics a link only copies bytes, and doing that in Python (a read into a new bytes
object, a write, a callback per read) costs about half of loopback throughput. Here the
bytes go source socket -> pipe -> destination socket with `os.splice`, never entering the
process, driven by the event loop's reader and writer callbacks on the same thread.

The transports own the sockets' file descriptors (uvloop refuses a reader on a transport's
descriptor), so the fast path works on duplicates, which it closes when stopped: the
socket stays open while a duplicate does. The link pauses the source transport's reading
and only starts the fast path while the destination transport has nothing queued, so
bytes never overtake each other. `stop` hands back what is still in the pipe, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable
from typing import Protocol

AVAILABLE = hasattr(os, "splice")
"""splice(2) is Linux only; elsewhere links stay on the direct path."""

PIPE_SIZE = 1 << 20
"""Bytes one splice can move; the default 64 KiB pipe is used when the system refuses this."""

_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)


class Counters(Protocol):
    received: int
    sent: int


class FastPath:
    """Splices `source_fd` into `destination_fd` until stopped or the source ends.

    `on_end` runs once when the source reaches end of stream or either socket fails; the
    owner then calls `stop`, as it does to switch to the toxic pipeline. Creating one
    raises OSError when the process is out of file descriptors.
    """

    def __init__(self, source_fd: int, destination_fd: int, counters: Counters,
                 on_end: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._counters = counters
        self._on_end = on_end
        with contextlib.ExitStack() as on_failure:
            self._pipe_out, self._pipe_in = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            on_failure.callback(os.close, self._pipe_out)
            on_failure.callback(os.close, self._pipe_in)
            self._source = os.dup(source_fd)
            on_failure.callback(os.close, self._source)
            self._destination = os.dup(destination_fd)
            on_failure.pop_all()
        try:
            self._capacity = fcntl.fcntl(self._pipe_in, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            self._capacity = fcntl.fcntl(self._pipe_in, fcntl.F_GETPIPE_SZ)
        self._in_pipe = 0
        self._loop.add_reader(self._source, self._on_readable)

    def _on_readable(self) -> None:
        try:
            moved = os.splice(self._source, self._pipe_in, self._capacity, flags=_FLAGS)
        except BlockingIOError:
            return
        except OSError:
            moved = 0
        if moved == 0:
            self._end()
            return
        self._counters.received += moved
        self._in_pipe = moved
        self._empty_pipe(reading=True)

    def _on_writable(self) -> None:
        self._empty_pipe(reading=False)

    def _empty_pipe(self, reading: bool) -> None:
        """Splice the pipe into the destination; while it is full, wait for it instead of
        reading (the pipe is the only buffer, so the source sees backpressure at once)."""
        try:
            while self._in_pipe:
                moved = os.splice(self._pipe_out, self._destination, self._in_pipe, flags=_FLAGS)
                self._counters.sent += moved
                self._in_pipe -= moved
        except BlockingIOError:
            if reading:
                self._loop.remove_reader(self._source)
                self._loop.add_writer(self._destination, self._on_writable)
            return
        except OSError:
            self._end()
            return
        if not reading:
            self._loop.remove_writer(self._destination)
            self._loop.add_reader(self._source, self._on_readable)

    def _end(self) -> None:
        self._loop.remove_reader(self._source)
        self._loop.remove_writer(self._destination)
        self._on_end()

    def stop(self) -> bytes:
        """Stop moving bytes and close the duplicates; returns the bytes left in the pipe.
        Call once."""
        self._loop.remove_reader(self._source)
        self._loop.remove_writer(self._destination)
        left = bytearray()
        while len(left) < self._in_pipe:
            left += os.read(self._pipe_out, self._in_pipe - len(left))
        for fd in (self._source, self._destination, self._pipe_out, self._pipe_in):
            os.close(fd)
        return bytes(left)
