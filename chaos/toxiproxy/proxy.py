"""A proxy: a listener that accepts clients and dials one upstream, with its toxics.

A proxy reports its listen address as given until it first listens, then as bound; the
bound address is kept while disabled, so enabling again rebinds the same port.
"""

from __future__ import annotations

import asyncio

from .connection import Connection
from .errors import listen_failure
from .gocompat import gojson
from .gocompat.addresses import AddressError, bind_listener, resolve
from .link import ByteCounters
from .metrics import ProxyMetrics
from .stream import Direction
from .toxic_collection import ToxicCollection


class Proxy:
    def __init__(self, name: str, listen: str, upstream: str, metrics: ProxyMetrics) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics = ToxicCollection()
        self._metrics = metrics
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[Connection] = set()

    async def start(self) -> None:
        """Listen; a failure raises ApiError 500 with Go's text and leaves the proxy disabled."""
        if self.enabled:
            return
        try:
            sock, bound = await bind_listener(self.listen)
        except AddressError as failure:
            raise listen_failure(str(failure)) from None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self).client, sock=sock)
        self.listen = bound
        self.enabled = True

    def stop(self) -> None:
        """Close the listener and every client and upstream socket."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.enabled = False
        for connection in list(self._connections):
            connection.close()

    async def differs(self, listen: str, upstream: str) -> bool:
        """Whether listen (after resolution) or upstream differ; raises ApiError 500 if
        `listen` cannot be resolved."""
        try:
            resolved = str(await resolve(listen))
        except AddressError as failure:
            raise listen_failure(str(failure)) from None
        return resolved != self.listen or upstream != self.upstream

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        if await self.differs(listen, upstream):
            self.stop()
            self.listen = listen
            self.upstream = upstream
        if enabled and not self.enabled:
            await self.start()
        elif not enabled and self.enabled:
            self.stop()

    @property
    def connections(self) -> tuple[Connection, ...]:
        """The open client connections (a snapshot)."""
        return tuple(self._connections)

    def connection_opened(self, connection: Connection) -> None:
        self._connections.add(connection)

    def connection_closed(self, connection: Connection) -> None:
        self._connections.discard(connection)

    def counters(self, direction: Direction) -> ByteCounters:
        return self._metrics.counters(direction, self.listen, self.name, self.upstream)

    def to_json(self) -> str:
        toxics = ",".join(wrapper.to_json() for wrapper in self.toxics.all())
        return (f'{{"name":{gojson.marshal(self.name)},"listen":{gojson.marshal(self.listen)},'
                f'"upstream":{gojson.marshal(self.upstream)},'
                f'"enabled":{"true" if self.enabled else "false"},"Logger":{{}},'
                f'"toxics":[{toxics}]}}')
