"""An embedded Toxiproxy 2.x compatible server (HTTP API and TCP proxies) on asyncio."""

from .server import ToxiproxyServer, main, start_server

__all__ = ["ToxiproxyServer", "main", "start_server"]
