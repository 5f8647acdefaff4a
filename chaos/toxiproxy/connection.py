"""One proxied client connection: the client socket, the upstream socket and two links.

Neither socket is read beyond a first read until both links exist: the kernel holds the
rest. The upstream is dialled without holding up other accepts. A failed dial closes the client at once. Either side's end closes both.
Links without toxics take over the sockets (the fast path) only once the reads that came
before them have been passed on.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Protocol

from .gocompat.addresses import AddressError, split_host_port
from .link import ByteCounters, Link
from .stream import Direction
from .toxic_collection import ToxicCollection

_LINGER_RESET = struct.pack("ii", 1, 0)


class ConnectionOwner(Protocol):
    """What a connection needs from its proxy; the proxy creates connections, not the reverse."""

    upstream: str
    toxics: ToxicCollection

    def counters(self, direction: Direction) -> ByteCounters: ...
    def connection_opened(self, connection: Connection) -> None: ...
    def connection_closed(self, connection: Connection) -> None: ...


class Side(asyncio.Protocol):
    """One socket of a connection: feeds the link reading it, paces the link writing it."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.transport: asyncio.Transport | None = None
        self.reader: Link | None = None
        self.writer: Link | None = None
        self.write_paused = False
        self._drain_waiter: asyncio.Future | None = None
        self._early: list[bytes] = []

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection.side_made(self)

    def data_received(self, data: bytes) -> None:
        if self.reader is None:
            # uvloop starts reading after connection_made even when it paused reading, so
            # the first read pauses it again: the kernel holds the rest until the link exists.
            self._early.append(data)
            self.transport.pause_reading()
        else:
            self.reader.feed(data)

    def eof_received(self) -> bool:
        if self.reader is None:
            self._early.append(b"")
        else:
            self.reader.feed_eof()
        return True

    def start_reading(self, link: Link) -> None:
        """Hand reads to `link`, first those that arrived before it existed."""
        self.reader = link
        early, self._early = self._early, []
        for data in early:
            link.feed(data) if data else link.feed_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.write_paused = False
        self._release_drain()
        self.connection.side_lost(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.writer is not None:
            self.writer.destination_paused_changed()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._release_drain()
        if self.writer is not None:
            self.writer.destination_paused_changed()

    def _release_drain(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    async def drained(self) -> None:
        if self.write_paused:
            if self._drain_waiter is None or self._drain_waiter.done():
                self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter

    def set_reset_on_close(self) -> None:
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Connection:
    def __init__(self, proxy: ConnectionOwner) -> None:
        self.proxy = proxy
        self.client = Side(self)
        self.upstream = Side(self)
        self.links: dict[Direction, Link] = {}
        self._dial: asyncio.Task | None = None
        self._closed = False

    def side_made(self, side: Side) -> None:
        if side is self.client:
            side.transport.pause_reading()
            self.proxy.connection_opened(self)
            self._dial = asyncio.get_running_loop().create_task(self._connect_upstream())

    async def _connect_upstream(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            host, port = split_host_port(self.proxy.upstream)
            await loop.create_connection(lambda: self.upstream, host or "localhost", port)
        except (OSError, AddressError, ValueError, UnicodeError):
            self.close()
            return
        if self._closed:
            self.upstream.close()
            return
        self._start_links()

    def _start_links(self) -> None:
        toxics = self.proxy.toxics
        upstream_link = Link(self.client, self.upstream, self.proxy.counters(Direction.UPSTREAM))
        downstream_link = Link(self.upstream, self.client, self.proxy.counters(Direction.DOWNSTREAM))
        self.upstream.writer = upstream_link
        self.client.writer = downstream_link
        self.links = {Direction.UPSTREAM: upstream_link, Direction.DOWNSTREAM: downstream_link}
        for direction, link in self.links.items():
            if toxics.has_reset_peer(direction):
                self.client.set_reset_on_close()
                self.upstream.set_reset_on_close()
            link.start(toxics.chain(direction))
            toxics.attach(direction, link)
        for side in (self.client, self.upstream):  # paused until now, if either spoke first
            side.transport.resume_reading()
        self.client.start_reading(upstream_link)
        self.upstream.start_reading(downstream_link)
        for link in self.links.values():
            link.try_fast_path()

    def side_lost(self, side: Side) -> None:
        if side.reader is not None:
            side.reader.feed_eof()
        other = self.upstream if side is self.client else self.client
        if side is self.client and self._dial is not None and not self._dial.done():
            self._dial.cancel()
        if other.transport is None or other.transport.is_closing():
            self._forget()

    def close(self) -> None:
        """Close both sockets now (the proxy is stopping or the dial failed)."""
        self._closed = True
        for link in self.links.values():
            link.abort()
        self.client.close()
        self.upstream.close()
        self._forget()

    def _forget(self) -> None:
        for direction, link in self.links.items():
            self.proxy.toxics.detach(direction, link)
        self.proxy.connection_closed(self)
