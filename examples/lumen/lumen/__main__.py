"""Entry point: `python -m lumen --host H --port P`."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from lumen.api import create_app
from lumen.config import Config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lumen", description="lumen image-generation backend")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per FAL status poll is too much
    app = create_app(Config.from_env())
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
