"""Command-line flags and the `--config` file, like toxiproxy-server's."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """A bad flag or config file; the message is one line for the user."""


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    config_file: Path | None
    proxy_metrics: bool
    runtime_metrics: bool
    show_version: bool


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise ConfigError(message)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} out of range 0-65535")
    return port


def parse_args(argv: list[str]) -> ServerConfig:
    parser = _Parser(prog="toxiproxy", description="A Toxiproxy 2.x compatible server.")
    parser.add_argument("--host", "-host", default="127.0.0.1", help="API host (default 127.0.0.1)")
    parser.add_argument("--port", "-port", type=_port, default=8474, help="API port (default 8474; 0 picks one)")
    parser.add_argument("--config", "-config", type=Path, help="JSON file of proxies to create at start")
    parser.add_argument("--proxy-metrics", "-proxy-metrics", action="store_true",
                        help="serve proxy byte counters on /metrics")
    parser.add_argument("--runtime-metrics", "-runtime-metrics", action="store_true",
                        help="serve process metrics on /metrics")
    parser.add_argument("--seed", "-seed", type=int, help="accepted for compatibility; has no effect")
    parser.add_argument("--version", "-version", action="store_true", help="print the version and exit")
    args = parser.parse_args(argv)
    return ServerConfig(args.host, args.port, args.config, args.proxy_metrics,
                        args.runtime_metrics, args.version)


def read_config_file(path: Path) -> bytes:
    """The file's bytes, checked to be a JSON array (its entries are checked like /populate)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path} is not valid JSON: {error}") from None
    if not isinstance(value, list):
        raise ConfigError(f"config file {path} must hold a JSON array of proxies")
    return data
