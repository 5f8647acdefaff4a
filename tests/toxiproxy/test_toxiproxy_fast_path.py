"""The fast path (a direction with no toxic moves bytes by splice) and its switches to and from
the toxic pipeline on live connections: no byte lost, doubled or reordered, counters right."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import random
import socket
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from test_toxiproxy_data_path import round_trip
from toxiproxy_support import IO_TIMEOUT_S, ServerThread, add_toxic, connect, create_proxy, recv_exactly

from chaos.toxiproxy import fast_path
from chaos.toxiproxy.connection import Connection
from chaos.toxiproxy.fast_path import FastPath
from chaos.toxiproxy.link import Link
from chaos.toxiproxy.stream import Direction

pytestmark = pytest.mark.skipif(not fast_path.AVAILABLE, reason="splice(2) is Linux only")


def links_on_fast_path(toxiproxy: ServerThread, proxy: str) -> dict[Direction, bool]:
    """Whether each direction of the proxy's one open connection is on the fast path."""
    async def read():
        connection, = toxiproxy.server.collection.get(proxy).connections
        return {direction: link.on_fast_path for direction, link in connection.links.items()}
    return toxiproxy.call(read())


def eventually(condition: Callable[[], bool], timeout: float = IO_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def receive(sock: socket.socket, size: int, quiet_s: float = 3.0, pauses: random.Random | None = None) -> bytes:
    """Up to `size` bytes; stops early after `quiet_s` without data, so a loss fails fast.
    With `pauses`, stops reading for a while every 4 MiB or so, so the proxy backs up."""
    sock.settimeout(quiet_s)
    parts, left, next_pause = [], size, size
    try:
        while left and (data := sock.recv(min(left, 1 << 20))):
            parts.append(data)
            left -= len(data)
            if pauses is not None and left <= next_pause:
                time.sleep(pauses.uniform(0.05, 0.25))
                next_pause = left - pauses.randint(1 << 20, 7 << 20)
    except TimeoutError:
        pass
    return b"".join(parts)


BOTH = {Direction.UPSTREAM: True, Direction.DOWNSTREAM: True}


# --- entering and leaving -----------------------------------------------------------------

def test_plain_connection_runs_on_fast_path_and_toxics_switch_it(api, toxiproxy, echo_upstream):
    proxy = create_proxy(api, "p", echo_upstream.address)
    with connect(proxy["listen"]) as client:
        assert round_trip(client) < 0.1
        assert links_on_fast_path(toxiproxy, "p") == BOTH
        add_toxic(api, "p", type="latency", attributes={"latency": 150})
        assert links_on_fast_path(toxiproxy, "p") == {Direction.UPSTREAM: True, Direction.DOWNSTREAM: False}
        assert round_trip(client) >= 0.14
        api.delete("/proxies/p/toxics/latency_downstream")
        assert eventually(lambda: links_on_fast_path(toxiproxy, "p") == BOTH)
        assert round_trip(client) < 0.1


def test_bytes_sent_while_the_upstream_is_dialled_wait_in_the_kernel(api, toxiproxy, upstream, monkeypatch):
    """A client that sends at once, before the upstream answers, is read once and then left to
    the kernel until the links exist; the bulk then goes by the fast path, not through Python."""
    dial = Connection._connect_upstream

    async def slow_dial(self):
        await asyncio.sleep(0.3)
        await dial(self)
    monkeypatch.setattr(Connection, "_connect_upstream", slow_dial)
    through_python = []
    feed = Link.feed

    def counted_feed(self, data):
        through_python.append(len(data))
        feed(self, data)
    monkeypatch.setattr(Link, "feed", counted_feed)
    proxy = create_proxy(api, "p", upstream.address)
    sent = os.urandom(16 << 20)
    with connect(proxy["listen"]) as client:
        sender = threading.Thread(target=client.sendall, args=(sent,))
        sender.start()
        received = receive(upstream.next_connection(), len(sent))
        sender.join(IO_TIMEOUT_S)
    assert received == sent
    assert sum(through_python) <= 1 << 20, f"{sum(through_python)} bytes read while dialling"


@pytest.mark.parametrize("downstream_toxic", [False, True])
def test_an_upstream_that_speaks_first_is_read_to_the_end(api, toxiproxy, upstream, monkeypatch, downstream_toxic):
    """A greeting read before the links exist pauses the upstream's reading; starting the links
    resumes it, on the fast path and through a toxic alike."""
    start_links = Connection._start_links

    def late_links(self):
        asyncio.get_running_loop().call_later(0.2, start_links, self)
    monkeypatch.setattr(Connection, "_start_links", late_links)
    proxy = create_proxy(api, "p", upstream.address)
    if downstream_toxic:
        add_toxic(api, "p", type="noop", stream="downstream")
    with connect(proxy["listen"]) as client:
        server = upstream.next_connection()
        server.sendall(b"hello\n")
        assert recv_exactly(client, 6) == b"hello\n"
        server.sendall(b"more")
        assert recv_exactly(client, 4) == b"more"


def test_without_splice_the_direct_path_carries_data(api, toxiproxy, echo_upstream, monkeypatch):
    monkeypatch.setattr(fast_path, "AVAILABLE", False)
    proxy = create_proxy(api, "p", echo_upstream.address)
    with connect(proxy["listen"]) as client:
        assert round_trip(client) < 0.1
        assert links_on_fast_path(toxiproxy, "p") == {Direction.UPSTREAM: False, Direction.DOWNSTREAM: False}


def test_out_of_descriptors_keeps_the_direct_path_and_leaks_none(api, toxiproxy, echo_upstream, monkeypatch):
    proxy = create_proxy(api, "p", echo_upstream.address)
    with connect(proxy["listen"]) as client:  # the listener and first accept allocate for good
        round_trip(client)
    assert eventually(lambda: not toxiproxy.server.collection.get("p").connections)
    fds_before = len(os.listdir("/proc/self/fd"))

    def out_of_descriptors(fd: int) -> int:
        raise OSError(errno.EMFILE, "Too many open files")
    monkeypatch.setattr(os, "dup", out_of_descriptors)
    with connect(proxy["listen"]) as client:
        assert round_trip(client) < 0.1
        assert links_on_fast_path(toxiproxy, "p") == {Direction.UPSTREAM: False, Direction.DOWNSTREAM: False}
    monkeypatch.undo()
    assert eventually(lambda: not toxiproxy.server.collection.get("p").connections)
    assert eventually(lambda: len(os.listdir("/proc/self/fd")) <= fds_before), "pipes left open"


def shrink_send_buffer_to_upstream(toxiproxy: ServerThread, proxy: str) -> None:
    """Make the proxy's socket to the upstream hold little, so its transport queues bytes."""
    async def shrink():
        connection, = toxiproxy.server.collection.get(proxy).connections
        sock = connection.upstream.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    toxiproxy.call(shrink())


def test_fast_path_waits_for_bytes_queued_by_the_pipeline(api, toxiproxy, upstream):
    """The last toxic removed while the upstream is not reading and the proxy still holds
    bytes for it: the fast path starts only once they are written, so nothing overtakes them."""
    proxy = create_proxy(api, "p", upstream.address)
    add_toxic(api, "p", type="noop", stream="upstream", name="n")
    first, second = os.urandom(64 << 10), os.urandom(64 << 10)
    with connect(proxy["listen"]) as client:
        server = upstream.next_connection()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        shrink_send_buffer_to_upstream(toxiproxy, "p")
        client.sendall(first)
        time.sleep(0.1)
        api.delete("/proxies/p/toxics/n")
        sender = threading.Thread(target=client.sendall, args=(second,))
        sender.start()
        time.sleep(0.1)
        assert not links_on_fast_path(toxiproxy, "p")[Direction.UPSTREAM], "started with bytes still queued"
        received = receive(server, len(first) + len(second))
        sender.join(IO_TIMEOUT_S)
        assert links_on_fast_path(toxiproxy, "p")[Direction.UPSTREAM]
    assert received == first + second


def test_connection_closing_under_queued_chunks_raises_nothing(api, toxiproxy, upstream):
    """The upstream goes away while the pipeline still holds chunks for it."""
    errors = []
    toxiproxy.loop.set_exception_handler(lambda loop, context: errors.append(context["message"]))
    try:
        proxy = create_proxy(api, "p", upstream.address)
        add_toxic(api, "p", type="noop", stream="upstream", name="n")
        with connect(proxy["listen"]) as client:
            server = upstream.next_connection()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            shrink_send_buffer_to_upstream(toxiproxy, "p")
            client.sendall(os.urandom(1 << 20))
            time.sleep(0.1)
            server.close()
            with contextlib.suppress(ConnectionResetError):  # the proxy closes with our bytes unread
                assert receive(client, 1) == b""
        time.sleep(0.2)
    finally:
        toxiproxy.loop.set_exception_handler(None)
    assert errors == []


# --- bytes held by the fast path when a toxic arrives -------------------------------------

def send_while_upstream_stalls_then_add_toxic(api, toxiproxy, upstream) -> tuple[bytes, bytes]:
    """Fill the fast path's pipe (the upstream does not read), add a toxic, then read it all."""
    proxy = create_proxy(api, "p", upstream.address)
    payload = os.urandom(8 << 20)
    with connect(proxy["listen"]) as client:
        server = upstream.next_connection()
        assert eventually(lambda: links_on_fast_path(toxiproxy, "p") == BOTH)
        sender = threading.Thread(target=client.sendall, args=(payload,))
        sender.start()
        time.sleep(0.3)
        add_toxic(api, "p", type="latency", stream="upstream", attributes={"latency": 20})
        received = receive(server, len(payload))
        sender.join(IO_TIMEOUT_S)
    return payload, received


def test_bytes_held_by_fast_path_go_through_the_new_toxic_in_order(api, toxiproxy, upstream):
    payload, received = send_while_upstream_stalls_then_add_toxic(api, toxiproxy, upstream)
    assert len(received) == len(payload)
    assert received == payload


def test_losing_the_held_bytes_is_caught(api, toxiproxy, upstream, monkeypatch):
    stop = FastPath.stop

    def stop_and_drop(self) -> bytes:
        stop(self)
        return b""
    monkeypatch.setattr(FastPath, "stop", stop_and_drop)
    payload, received = send_while_upstream_stalls_then_add_toxic(api, toxiproxy, upstream)
    assert received != payload


# --- toxic churn during a large transfer --------------------------------------------------

CHURN_TOXICS = [("latency", {"latency": 2, "jitter": 1}), ("bandwidth", {"rate": 100_000}),
                ("slicer", {"average_size": 8192, "size_variation": 2048, "delay": 10})]


def churn(api: httpx.Client, proxy: str, stop: threading.Event) -> int:
    """Add one to three toxics, let them act, remove them all, let the fast path run; repeat.
    Returns how many such rounds ran."""
    rng, rounds = random.Random(11), 0
    while not stop.is_set():
        names = []
        for _ in range(rng.randint(1, 3)):
            kind, attributes = rng.choice(CHURN_TOXICS)
            name = f"{kind}{rounds}_{len(names)}"
            add_toxic(api, proxy, name=name, type=kind, stream=rng.choice(["upstream", "downstream"]),
                      attributes=attributes)
            names.append(name)
        time.sleep(rng.uniform(0.01, 0.05))
        for name in names:
            assert api.delete(f"/proxies/{proxy}/toxics/{name}").status_code == 204
        time.sleep(rng.uniform(0.01, 0.05))
        rounds += 1
    return rounds


def send_in_bursts(sock: socket.socket, data: bytes, seed: int) -> None:
    """Bursts of up to 1 MiB with pauses, so the transfer outlasts several churn rounds."""
    rng, view, offset = random.Random(seed), memoryview(data), 0
    while offset < len(data):
        burst = rng.randint(1, 1 << 20)
        sock.sendall(view[offset:offset + burst])
        offset += burst
        time.sleep(rng.uniform(0, 0.02))


def test_toxic_churn_during_large_transfer_both_ways_keeps_every_byte(api, upstream):
    proxy = create_proxy(api, "p", upstream.address)
    size = 32 << 20
    up, down = os.urandom(size), os.urandom(size)
    results: dict[str, bytes] = {}
    stop = threading.Event()
    with connect(proxy["listen"]) as client:
        server = upstream.next_connection()
        rounds = []
        threads = [threading.Thread(target=lambda: rounds.append(churn(api, "p", stop))),
                   threading.Thread(target=send_in_bursts, args=(client, up, 1)),
                   threading.Thread(target=send_in_bursts, args=(server, down, 2)),
                   threading.Thread(target=lambda: results.update(up=receive(server, size, pauses=random.Random(3)))),
                   threading.Thread(target=lambda: results.update(down=receive(client, size, pauses=random.Random(4))))]
        for thread in threads:
            thread.start()
        for thread in threads[3:]:
            thread.join(60)
        stop.set()
        for thread in threads[:3]:
            thread.join(IO_TIMEOUT_S)
    assert rounds and rounds[0] >= 3, f"only {rounds} churn rounds ran during the transfer"
    for name, sent in (("up", up), ("down", down)):
        assert len(results[name]) == size, f"{name}: {len(results[name])} of {size} bytes"
        assert hashlib.sha256(results[name]).digest() == hashlib.sha256(sent).digest(), f"{name}: corrupted"


# --- byte counters ------------------------------------------------------------------------

def transfer_and_read_counters(server: ServerThread, upstream) -> dict[str, float]:
    """Send 3 MiB + 1 up and 5 MiB + 3 down on the fast path; the proxy's /metrics samples."""
    with httpx.Client(base_url=server.url, timeout=IO_TIMEOUT_S) as api:
        proxy = create_proxy(api, "counted", upstream.address)
        with connect(proxy["listen"]) as client:
            server_side = upstream.next_connection()
            assert eventually(lambda: links_on_fast_path(server, "counted") == BOTH)
            sender = threading.Thread(target=client.sendall, args=(b"u" * ((3 << 20) + 1),))
            sender.start()
            server_side.sendall(b"d" * ((5 << 20) + 3))
            assert len(receive(client, (5 << 20) + 3)) == (5 << 20) + 3
            assert len(receive(server_side, (3 << 20) + 1)) == (3 << 20) + 1
            sender.join(IO_TIMEOUT_S)
        samples = {}
        for line in api.get("/metrics").text.splitlines():
            if line.startswith("toxiproxy_proxy_") and 'proxy="counted"' in line:
                name, value = line.split(" ")
                samples[name.split("{")[0] + "/" + name.split('direction="')[1].split('"')[0]] = float(value)
        return samples


def test_byte_counters_are_exact_on_fast_path(server_with_metrics, upstream):
    assert transfer_and_read_counters(server_with_metrics, upstream) == {
        "toxiproxy_proxy_received_bytes_total/upstream": (3 << 20) + 1,
        "toxiproxy_proxy_sent_bytes_total/upstream": (3 << 20) + 1,
        "toxiproxy_proxy_received_bytes_total/downstream": (5 << 20) + 3,
        "toxiproxy_proxy_sent_bytes_total/downstream": (5 << 20) + 3,
    }


def test_uncounted_fast_path_bytes_are_caught(server_with_metrics, upstream, monkeypatch):
    init = FastPath.__init__

    def uncounted(self, source_fd, destination_fd, counters, on_end):
        init(self, source_fd, destination_fd, type(counters)(), on_end)
    monkeypatch.setattr(FastPath, "__init__", uncounted)
    samples = transfer_and_read_counters(server_with_metrics, upstream)
    assert samples["toxiproxy_proxy_sent_bytes_total/downstream"] == 0
