"""Helpers for the Toxiproxy tests: TCP upstreams, proxy creation, socket I/O with timeouts."""

from __future__ import annotations

import queue
import socket
import threading

import httpx

IO_TIMEOUT_S = 5.0


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
