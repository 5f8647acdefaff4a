"""``python -m chaos.emulators.storage``: serve the Storage emulator over plain HTTP in the foreground."""

from __future__ import annotations

from pathlib import Path

from chaos.emulators.serving import emulator_parser, serve
from chaos.emulators.storage.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = emulator_parser(
        "python -m chaos.emulators.storage", "Supabase Storage emulator (storage-api REST subset over plain HTTP)."
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="directory for objects and metadata")
    parser.add_argument("--service-key", required=True, help="the key accepted as apikey and bearer token")
    parser.add_argument("--jwt-secret", required=True, help="HS256 secret for user tokens and signed URLs")
    args = parser.parse_args(argv)
    if not args.service_key or not args.jwt_secret:
        parser.error("--service-key and --jwt-secret must not be empty")
    if args.data_dir.exists() and not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} exists and is not a directory")
    serve(create_app(args.data_dir, args.service_key, args.jwt_secret), args.host, args.port)


if __name__ == "__main__":
    main()
