"""``python -m chaos.emulators.fal``: serve the FAL emulator over TLS in the foreground.

uvicorn handles SIGINT and SIGTERM: it stops accepting and lets open requests finish for a
moment. It then re-raises the signal, which lands in ``_exit_cleanly`` so the process exits 0
rather than dying by the signal or printing a KeyboardInterrupt traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import uvicorn

from chaos.emulators.fal.app import create_app

SHUTDOWN_GRACE_S = 2  # a stuck ``run`` call would otherwise hold shutdown forever


def _readable_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    return path


def _port(value: str) -> int:
    port = int(value)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {value}")
    return port


def _exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos.emulators.fal", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, required=True, help="TCP port to bind")
    parser.add_argument("--certfile", type=_readable_file, required=True, help="PEM server certificate chain")
    parser.add_argument("--keyfile", type=_readable_file, required=True, help="PEM private key of the certificate")
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault generator (reproducible runs)")
    args = parser.parse_args(argv)
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _exit_cleanly)
    uvicorn.run(
        create_app(args.seed),
        host=args.host,
        port=args.port,
        ssl_certfile=str(args.certfile),
        ssl_keyfile=str(args.keyfile),
        log_level="warning",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )


if __name__ == "__main__":
    main()
