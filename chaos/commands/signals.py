"""Ctrl-C and SIGTERM unwind a long-running command as KeyboardInterrupt, so every `finally` and `with`
runs, even when the command inherited SIGINT ignored: a shell gives its background jobs (`cmd &` in a
script, `nohup`) that disposition, and such a command would say "press Ctrl-C to stop" and not stop.
Children started afterwards get SIGINT back at its default, since exec resets a handled signal."""

from __future__ import annotations

import signal


def install_interrupt_handlers() -> None:
    def _raise_interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_interrupt)
