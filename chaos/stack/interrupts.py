"""Ctrl-C and SIGTERM held back while something is made and handed to what will remove it.

An interrupt surfaces as KeyboardInterrupt between any two Python calls. Arriving after a temp
directory or a child process exists but before its owner has noted it, it leaks what was made: the
owner's cleanup never learns of it; arriving during cleanup, it leaves the rest running. Inside
`deferred()` those signals are only noted; on leaving, the first one is delivered again, by then to
code whose cleanup covers what was made, or after the cleanup is done.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver the first that came. A user's Ctrl-C
    waits for the block: keep it to making-and-noting, and to cleanup that must finish once begun. Off
    the main thread (where Python runs no signal handler) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    try:
        for signum in SIGNALS:
            previous[signum] = signal.signal(signum, lambda number, frame: received.append(number))
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            signal.raise_signal(received[0])
