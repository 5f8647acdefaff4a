"""The server as a whole: the API on its HTTP listener plus the proxy collection.

`start_server` runs it inside an existing event loop (tests, the embedded stack); `main`
is the `toxiproxy-server`-like command line, on uvloop when installed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys

from .api import HANDLER_TIMEOUT_S, VERSION, ToxiproxyApi, parse_populate_body
from .config import ConfigError, ServerConfig, parse_args, read_config_file
from .errors import ApiError
from .gocompat.httpserver import GoServerTimeouts, HttpServer
from .metrics import ProxyMetrics, build_registry
from .proxy_collection import ProxyCollection

log = logging.getLogger("chaos.toxiproxy")


class ToxiproxyServer:
    def __init__(self, proxy_metrics: bool = False, runtime_metrics: bool = False,
                 handler_timeout_s: float = HANDLER_TIMEOUT_S,
                 http_timeouts: GoServerTimeouts | None = None) -> None:
        metrics = ProxyMetrics()
        self.collection = ProxyCollection(metrics)
        registry = None
        if proxy_metrics or runtime_metrics:
            registry = build_registry(metrics if proxy_metrics else None, runtime_metrics)
        self.api = ToxiproxyApi(self.collection, registry, handler_timeout_s)
        self._http = HttpServer(self.api, http_timeouts)
        self.host = ""
        self.port = 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self, host: str, port: int) -> None:
        self.host = host
        self.port = await self._http.start(host, port)

    async def populate(self, body: bytes) -> None:
        """Create proxies from a /populate-style JSON body (the `--config` file)."""
        entries = parse_populate_body(body)
        for entry in entries:
            proxy = self.collection.new_proxy(entry["name"], entry.get("listen", ""), entry["upstream"])
            await self.collection.add_or_replace(proxy, entry.get("enabled", True))

    async def close(self) -> None:
        """Stop every proxy (closing their connections) and the API listener."""
        self.collection.clear()
        await self._http.close()


async def start_server(host: str = "127.0.0.1", port: int = 0, *, proxy_metrics: bool = False,
                       handler_timeout_s: float = HANDLER_TIMEOUT_S,
                       http_timeouts: GoServerTimeouts | None = None) -> ToxiproxyServer:
    server = ToxiproxyServer(proxy_metrics=proxy_metrics, handler_timeout_s=handler_timeout_s,
                             http_timeouts=http_timeouts)
    await server.start(host, port)
    return server


def _log(message: str, **fields) -> None:
    print(json.dumps({"level": "info", **fields, "message": message}), flush=True)


async def _serve(config: ServerConfig, config_body: bytes | None) -> int:
    server = ToxiproxyServer(config.proxy_metrics, config.runtime_metrics)
    try:
        await server.start(config.host, config.port)
        if config_body is not None:
            await server.populate(config_body)
    except (OSError, ApiError) as error:
        await server.close()
        reason = error.message if isinstance(error, ApiError) else error.strerror or str(error)
        print(f"toxiproxy: error: {reason}", file=sys.stderr)
        return 2
    _log("Starting Toxiproxy HTTP server", host=config.host, port=server.port, version=VERSION)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    _log("Shutting down Toxiproxy")
    await server.close()
    return 0


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    """Run the server in the foreground until SIGINT/SIGTERM; returns the exit code."""
    try:
        config = parse_args(sys.argv[1:] if argv is None else argv)
        if config.show_version:
            print(f"toxiproxy-server version {VERSION}")
            return 0
        config_body = read_config_file(config.config_file) if config.config_file else None
    except ConfigError as error:
        print(f"toxiproxy: error: {error}", file=sys.stderr)
        return 2
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        return runner.run(_serve(config, config_body))
