"""Serving an emulator in the foreground: the listen options both command lines share, and uvicorn
(with httptools' C HTTP parser: the emulators share the CPU with the service they test).

uvicorn handles SIGINT and SIGTERM: it stops accepting and lets open requests finish for a
moment. It then re-raises the signal, which lands in ``_exit_cleanly`` so the process exits 0
rather than dying by the signal or printing a KeyboardInterrupt traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

import uvicorn
from starlette.types import ASGIApp


def _port(value: str) -> int:
    port = int(value)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {value}")
    return port


def emulator_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A command line with ``--host`` and ``--port``; the emulator adds its own options."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, required=True, help="TCP port to bind")
    return parser


def _exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)


def serve(app: ASGIApp, host: str, port: int, **uvicorn_options: Any) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then exit 0."""
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _exit_cleanly)
    uvicorn.run(app, host=host, port=port, log_level="warning", http="httptools", **uvicorn_options)
