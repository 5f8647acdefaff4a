"""``python -m chaos.emulators.fal``: serve the FAL emulator over TLS in the foreground."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from chaos.emulators.fal.app import create_app
from chaos.emulators.serving import emulator_parser, serve

SHUTDOWN_GRACE_S = 2  # a stuck ``run`` call would otherwise hold shutdown forever


def _readable_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = emulator_parser("python -m chaos.emulators.fal", __doc__.splitlines()[0])
    parser.add_argument("--certfile", type=_readable_file, required=True, help="PEM server certificate chain")
    parser.add_argument("--keyfile", type=_readable_file, required=True, help="PEM private key of the certificate")
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault generator (reproducible runs)")
    parser.add_argument("--key", default=os.environ.get("GENCHAOS_FAL_EMULATOR_KEY"),
                        help="the only API key accepted (default: $GENCHAOS_FAL_EMULATOR_KEY; unset: any key)")
    args = parser.parse_args(argv)
    serve(
        create_app(args.seed, args.key),
        args.host,
        args.port,
        ssl_certfile=str(args.certfile),
        ssl_keyfile=str(args.keyfile),
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )


if __name__ == "__main__":
    main()
