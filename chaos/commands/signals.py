"""Turn SIGTERM into the same clean unwinding as Ctrl-C, so every `finally` and `with` runs."""

from __future__ import annotations

import signal


def exit_cleanly_on_sigterm() -> None:
    def _raise_interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise_interrupt)
