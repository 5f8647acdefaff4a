"""Helpers for the Toxiproxy tests: the server in a thread, TCP upstreams, proxy creation,
socket I/O with timeouts.

Test modules import these from here rather than from `conftest`, a module name other test
folders use too.
"""

from __future__ import annotations

import asyncio
import queue
import socket
import threading

import httpx
import uvloop

from chaos.toxiproxy import ToxiproxyServer, start_server

IO_TIMEOUT_S = 5.0


class ServerThread:
    """A ToxiproxyServer running on its own uvloop event loop thread."""

    def __init__(self, **options) -> None:
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server: ToxiproxyServer = self.call(start_server(**options))

    def call(self, coroutine, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    @property
    def url(self) -> str:
        return self.server.url

    def clear(self) -> None:
        async def clear():
            self.server.collection.clear()
        self.call(clear())

    def stop(self) -> None:
        try:
            self.call(self.server.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()


class Upstream:
    """A TCP server on 127.0.0.1 that hands each accepted socket to the test (or echoes)."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.accepted: queue.Queue[socket.socket] = queue.Queue()
        self._sockets: list[socket.socket] = []
        self._running = True
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while self._running:
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(IO_TIMEOUT_S)
            self._sockets.append(conn)
            if self.echo:
                threading.Thread(target=self._echo, args=(conn,), daemon=True).start()
            else:
                self.accepted.put(conn)

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()

    def next_connection(self, timeout: float = IO_TIMEOUT_S) -> socket.socket:
        return self.accepted.get(timeout=timeout)

    def close(self) -> None:
        self._running = False
        self._thread.join(2)
        self._listener.close()
        for conn in self._sockets:
            conn.close()


def create_proxy(api: httpx.Client, name: str, upstream: str, listen: str = "127.0.0.1:0",
                 **extra) -> dict:
    response = api.post("/proxies", json={"name": name, "listen": listen, "upstream": upstream, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def add_toxic(api: httpx.Client, proxy: str, **toxic) -> dict:
    response = api.post(f"/proxies/{proxy}/toxics", json=toxic)
    assert response.status_code == 200, response.text
    return response.json()


def connect(listen: str) -> socket.socket:
    host, port = listen.rsplit(":", 1)
    host = "127.0.0.1" if host in ("[::]", "") else host.strip("[]")
    client = socket.create_connection((host, int(port)), timeout=IO_TIMEOUT_S)
    client.settimeout(IO_TIMEOUT_S)
    return client


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    parts = []
    while size:
        data = sock.recv(min(size, 1 << 20))
        if not data:
            break
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
