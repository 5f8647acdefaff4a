"""The proxied data path and every toxic's behaviour, on real sockets (tolerances generous)."""

from __future__ import annotations

import os
import random
import socket
import threading
import time

import pytest
from toxiproxy_support import IO_TIMEOUT_S, add_toxic, connect, create_proxy, recv_exactly

from chaos.toxiproxy.toxics.slicer import SlicerToxic


def wait_closed(sock: socket.socket, timeout: float = IO_TIMEOUT_S) -> bytes:
    """Read until EOF; returns what arrived before it."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    started = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - started


@pytest.fixture
def echo_proxy(api, echo_upstream):
    return create_proxy(api, "echo", echo_upstream.address)


# --- plain proxying -----------------------------------------------------------------------

def test_simple_and_two_part_message(echo_proxy):
    with connect(echo_proxy["listen"]) as client:
        client.sendall(b"hello world")
        assert recv_exactly(client, 11) == b"hello world"
        client.sendall(b"hello ")
        time.sleep(0.05)
        client.sendall(b"world")
        assert recv_exactly(client, 11) == b"hello world"


def test_big_message_intact(echo_proxy):
    payload = os.urandom(8 << 20)
    with connect(echo_proxy["listen"]) as client:
        sender = threading.Thread(target=client.sendall, args=(payload,))
        sender.start()
        assert recv_exactly(client, len(payload)) == payload
        sender.join(IO_TIMEOUT_S)


def test_proxy_to_down_upstream_closes_client_quickly(api):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    proxy = create_proxy(api, "dead", dead)
    started = time.monotonic()
    with connect(proxy["listen"]) as client:
        assert wait_closed(client) == b""
    assert time.monotonic() - started < 0.5


def test_client_close_closes_upstream_and_vice_versa(api, upstream):
    proxy = create_proxy(api, "p", upstream.address)
    client = connect(proxy["listen"])
    server = upstream.next_connection()
    client.shutdown(socket.SHUT_WR)
    assert wait_closed(server) == b""
    assert wait_closed(client) == b""
    client.close()
    client = connect(proxy["listen"])
    server = upstream.next_connection()
    server.sendall(b"bye")
    server.close()
    assert wait_closed(client) == b"bye"
    client.close()


def test_disable_and_delete_close_live_connections(api, echo_upstream):
    proxy = create_proxy(api, "p", echo_upstream.address)
    client = connect(proxy["listen"])
    round_trip(client)
    api.post("/proxies/p", json={"enabled": False})
    assert wait_closed(client) == b""
    with pytest.raises(ConnectionRefusedError):
        connect(proxy["listen"])
    api.post("/proxies/p", json={"enabled": True})
    client = connect(proxy["listen"])
    round_trip(client)
    api.delete("/proxies/p")
    assert wait_closed(client) == b""


def test_backpressure_bounds_buffering(api, upstream):
    """An upstream that never reads stops the client's sends instead of filling memory."""
    proxy = create_proxy(api, "p", upstream.address)
    add_toxic(api, "p", type="noop", stream="upstream", name="plain_then_toxic")
    for toxic_present in (True, False):
        if not toxic_present:
            api.delete("/proxies/p/toxics/plain_then_toxic")
        with connect(proxy["listen"]) as client:
            upstream.next_connection()
            client.setblocking(False)
            sent, deadline = 0, time.monotonic() + 1
            block = b"x" * 65536
            while time.monotonic() < deadline:
                try:
                    sent += client.send(block)
                except BlockingIOError:
                    time.sleep(0.05)
            assert sent < 64 << 20, f"{sent} bytes accepted with nobody reading"


# --- latency ------------------------------------------------------------------------------

def test_latency_downstream_and_upstream(api, echo_upstream, echo_proxy):
    with connect(echo_proxy["listen"]) as client:
        baseline = round_trip(client)
        add_toxic(api, "echo", type="latency", attributes={"latency": 100})
        assert 0.095 <= round_trip(client) < 0.1 + baseline + 0.15
        add_toxic(api, "echo", type="latency", stream="upstream", attributes={"latency": 100})
        assert 0.195 <= round_trip(client) < 0.2 + baseline + 0.15


def test_two_latency_toxics_add_up(api, echo_proxy):
    add_toxic(api, "echo", type="latency", name="a", attributes={"latency": 60})
    add_toxic(api, "echo", type="latency", name="b", attributes={"latency": 60})
    with connect(echo_proxy["listen"]) as client:
        assert 0.115 <= round_trip(client) < 0.3


def test_latency_jitter_stays_in_range(api, echo_proxy):
    add_toxic(api, "echo", type="latency", attributes={"latency": 60, "jitter": 40})
    with connect(echo_proxy["listen"]) as client:
        delays = [round_trip(client) for _ in range(8)]
    assert all(0.018 <= d < 0.25 for d in delays)
    assert max(delays) - min(delays) > 0.005


def test_latency_does_not_accumulate_for_back_to_back_chunks(api, echo_proxy):
    add_toxic(api, "echo", type="latency", attributes={"latency": 100})
    with connect(echo_proxy["listen"]) as client:
        started = time.monotonic()
        for i in range(10):
            client.sendall(b"%d" % i)
            time.sleep(0.01)
        assert recv_exactly(client, 10) == b"0123456789"
        assert time.monotonic() - started < 0.35


def test_toxicity_zero_never_applies_and_is_per_connection(api, echo_proxy):
    add_toxic(api, "echo", type="latency", toxicity=0, attributes={"latency": 300})
    with connect(echo_proxy["listen"]) as client:
        assert round_trip(client) < 0.2
    api.patch("/proxies/echo/toxics/latency_downstream", json={"toxicity": 0.5, "attributes": {"latency": 80}})
    slow = []
    for _ in range(16):
        with connect(echo_proxy["listen"]) as client:
            first = round_trip(client) > 0.07
            assert (round_trip(client) > 0.07) == first
            slow.append(first)
    assert any(slow) and not all(slow)


# --- live changes -------------------------------------------------------------------------

def test_toxic_added_updated_removed_on_live_connection(api, echo_proxy):
    with connect(echo_proxy["listen"]) as client:
        assert round_trip(client) < 0.1
        add_toxic(api, "echo", type="latency", attributes={"latency": 150})
        assert round_trip(client) >= 0.14
        api.patch("/proxies/echo/toxics/latency_downstream", json={"attributes": {"latency": 0}})
        assert round_trip(client) < 0.1
        api.patch("/proxies/echo/toxics/latency_downstream", json={"attributes": {"latency": 3000}})
        client.sendall(b"held")
        time.sleep(0.1)
        started = time.monotonic()
        api.delete("/proxies/echo/toxics/latency_downstream")
        assert recv_exactly(client, 4) == b"held"
        assert time.monotonic() - started < 1.0


def test_no_corruption_while_toxics_churn(api, echo_proxy):
    payload = os.urandom(6 << 20)
    received = bytearray()
    stop = threading.Event()

    def churn() -> None:
        rng = random.Random(7)
        kinds = [("latency", {"latency": 2, "jitter": 1}), ("bandwidth", {"rate": 50_000}),
                 ("slicer", {"average_size": 4096, "size_variation": 1024, "delay": 10}), ("noop", {})]
        names: list[str] = []
        while not stop.is_set():
            action = rng.random()
            if names and action < 0.4:
                api.delete(f"/proxies/echo/toxics/{names.pop(rng.randrange(len(names)))}")
            elif names and action < 0.6:
                api.patch(f"/proxies/echo/toxics/{rng.choice(names)}", json={"toxicity": rng.random()})
            else:
                kind, attributes = rng.choice(kinds)
                name = f"{kind}{rng.randrange(10**6)}"
                stream = rng.choice(["upstream", "downstream"])
                if api.post("/proxies/echo/toxics", json={"name": name, "type": kind, "stream": stream,
                                                          "attributes": attributes}).status_code == 200:
                    names.append(name)
            time.sleep(0.005)

    with connect(echo_proxy["listen"]) as client:
        client.settimeout(20)
        churner = threading.Thread(target=churn)
        sender = threading.Thread(target=client.sendall, args=(payload,))
        churner.start()
        sender.start()
        try:
            received += recv_exactly(client, len(payload))
        finally:
            stop.set()
            churner.join(10)
            sender.join(10)
    assert len(received) == len(payload)
    assert received == payload


# --- bandwidth, slicer, limit_data -------------------------------------------------------

def test_bandwidth_rate_within_ten_percent(api, upstream):
    proxy = create_proxy(api, "p", upstream.address)
    add_toxic(api, "p", type="bandwidth", stream="upstream", attributes={"rate": 500})
    payload = os.urandom(500_000)
    with connect(proxy["listen"]) as client:
        server = upstream.next_connection()
        started = time.monotonic()
        client.sendall(payload)
        assert recv_exactly(server, len(payload)) == payload
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed <= 1.1, elapsed


def test_bandwidth_zero_stalls_until_removed(api, echo_proxy):
    add_toxic(api, "echo", type="bandwidth", attributes={"rate": 0})
    with connect(echo_proxy["listen"]) as client:
        client.sendall(b"stuck")
        client.settimeout(0.4)
        with pytest.raises(TimeoutError):
            client.recv(5)
        api.delete("/proxies/echo/toxics/bandwidth_downstream")
        client.settimeout(IO_TIMEOUT_S)
        assert recv_exactly(client, 5) == b"stuck"


def test_slicer_sends_one_byte_pieces(api, upstream):
    proxy = create_proxy(api, "p", upstream.address)
    add_toxic(api, "p", type="slicer", stream="upstream",
              attributes={"average_size": 1, "size_variation": 0, "delay": 20_000})
    with connect(proxy["listen"]) as client:
        server = upstream.next_connection()
        client.sendall(b"abcdefghijklmnopqrstuvwx")
        pieces = [server.recv(100) for _ in range(24)]
    assert pieces == [bytes([c]) for c in b"abcdefghijklmnopqrstuvwx"]


def test_slicer_piece_count_for_large_chunk():
    ends: list[int] = []
    SlicerToxic(average_size=1024, size_variation=512, delay=10).cut(0, 480_000, ends)
    assert 240 <= len(ends) <= 720
    assert ends[-1] == 480_000 and ends == sorted(ends)


def test_limit_data_exact_counts(api, upstream):
    proxy = create_proxy(api, "p", upstream.address)
    add_toxic(api, "p", type="limit_data", stream="upstream", attributes={"bytes": 1000})
    with connect(proxy["listen"]) as client:
        server = upstream.next_connection()
        client.sendall(b"a" * 600)
        time.sleep(0.05)
        client.sendall(b"b" * 600)
        assert wait_closed(server) == b"a" * 600 + b"b" * 400
        assert wait_closed(client) == b""
    api.patch("/proxies/p/toxics/limit_data_upstream", json={"attributes": {"bytes": 0}})
    with connect(proxy["listen"]) as client:
        server = upstream.next_connection()
        client.sendall(b"x")
        assert wait_closed(server) == b""


# --- closing toxics -----------------------------------------------------------------------

def test_slow_close_delays_close(api, upstream):
    proxy = create_proxy(api, "p", upstream.address)
    add_toxic(api, "p", type="slow_close", attributes={"delay": 300})
    with connect(proxy["listen"]) as client:
        server = upstream.next_connection()
        server.sendall(b"last words")
        started = time.monotonic()
        server.close()
        assert wait_closed(client) == b"last words"
        assert 0.28 <= time.monotonic() - started < 1.0


def test_timeout_drops_data_then_closes(api, upstream):
    proxy = create_proxy(api, "p", upstream.address)
    add_toxic(api, "p", type="timeout", stream="upstream", attributes={"timeout": 200})
    with connect(proxy["listen"]) as client:
        server = upstream.next_connection()
        started = time.monotonic()
        client.sendall(b"dropped")
        assert wait_closed(server) == b""
        assert wait_closed(client) == b""
        assert 0.18 <= time.monotonic() - started < 1.0


def test_timeout_zero_holds_until_removal_closes(api, upstream):
    proxy = create_proxy(api, "p", upstream.address)
    add_toxic(api, "p", type="timeout", stream="upstream", attributes={"timeout": 0})
    with connect(proxy["listen"]) as client:
        server = upstream.next_connection()
        client.sendall(b"dropped")
        server.settimeout(0.4)
        with pytest.raises(TimeoutError):
            server.recv(10)
        api.delete("/proxies/p/toxics/timeout_upstream")
        assert wait_closed(server) == b""
        assert wait_closed(client) == b""


def test_timeout_removal_by_reset_closes_even_when_not_drawn(api, echo_upstream):
    proxy = create_proxy(api, "p", echo_upstream.address)
    add_toxic(api, "p", type="timeout", toxicity=0, attributes={"timeout": 0})
    with connect(proxy["listen"]) as client:
        round_trip(client)
        assert api.post("/reset").status_code == 204
        assert wait_closed(client) == b""


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_reset_peer_sends_rst(api, upstream, stream):
    proxy = create_proxy(api, "p", upstream.address)
    add_toxic(api, "p", type="reset_peer", stream=stream, attributes={"timeout": 100})
    with connect(proxy["listen"]) as client:
        server = upstream.next_connection()
        started = time.monotonic()
        (client if stream == "upstream" else server).sendall(b"trigger")
        with pytest.raises(ConnectionResetError):
            client.recv(10)
        assert 0.09 <= time.monotonic() - started < 1.0
        assert client.recv(10) == b""
