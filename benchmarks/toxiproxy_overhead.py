"""Overhead and accuracy of the embedded Toxiproxy server, measured against direct TCP.

Client (this process), proxy (`python -m chaos.toxiproxy`) and upstream servers (a child
process) run separately. Prints throughput of a large transfer and p50/p99 round trips of
small messages, through the proxy and direct, and the accuracy of latency and bandwidth
toxics. Targets: throughput >= 0.7x direct, added p50 RTT < 100 us.

For scale it also measures the least any user-space relay can cost here: a process that does
nothing but splice(2) each direction in a blocking thread (no event loop, no API, no toxics).
What no relay can beat on this machine is that ratio, not 1.0.

    python benchmarks/toxiproxy_overhead.py [--size-mib 256] [--round-trips 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

import httpx

LENGTH = struct.Struct("!Q")


# --- upstream process ------------------------------------------------------------------

class _Sink(asyncio.Protocol):
    """Reads an 8-byte length, then that many bytes, then answers b"k"."""

    def connection_made(self, transport):
        self.transport, self.header, self.remaining = transport, b"", None

    def data_received(self, data):
        if self.remaining is None:
            self.header += data
            if len(self.header) < LENGTH.size:
                return
            self.remaining = LENGTH.unpack(self.header[:LENGTH.size])[0]
            data = self.header[LENGTH.size:]
        self.remaining -= len(data)
        if self.remaining == 0:
            self.transport.write(b"k")
            self.remaining = None
            self.header = b""


class _Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def _serve_upstreams() -> None:
    loop = asyncio.get_running_loop()
    sink = await loop.create_server(_Sink, "127.0.0.1", 0)
    echo = await loop.create_server(_Echo, "127.0.0.1", 0)
    print(json.dumps({"sink": sink.sockets[0].getsockname()[1], "echo": echo.sockets[0].getsockname()[1]}),
          flush=True)
    await asyncio.Event().wait()


def upstream_main() -> None:
    import uvloop
    uvloop.run(_serve_upstreams())


# --- the ideal relay process ----------------------------------------------------------------

def _splice_forever(source: socket.socket, destination: socket.socket) -> None:
    """Move bytes source -> pipe -> destination until the source closes; the kernel does the copying."""
    pipe_out, pipe_in = os.pipe()
    fcntl.fcntl(pipe_in, fcntl.F_SETPIPE_SZ, 1 << 20)  # as the proxy's fast path asks for
    while moved := os.splice(source.fileno(), pipe_in, 1 << 20):
        while moved:
            moved -= os.splice(pipe_out, destination.fileno(), moved)
    destination.shutdown(socket.SHUT_WR)


def ideal_relay_main(upstream_port: int) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
    while True:
        client, _ = listener.accept()
        upstream = _connect(upstream_port)
        for end in (client, upstream):
            end.setblocking(True)  # splice(2) then waits in the kernel, not in a Python loop
        for source, destination in ((client, upstream), (upstream, client)):
            threading.Thread(target=_splice_forever, args=(source, destination), daemon=True).start()


# --- client measurements -----------------------------------------------------------------

def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def throughput_mb_s(port: int, size: int) -> float:
    block = memoryview(bytes(1 << 20))
    with _connect(port) as sock:
        started = time.perf_counter()
        sock.sendall(LENGTH.pack(size))
        for _ in range(size // len(block)):
            sock.sendall(block)
        assert sock.recv(1) == b"k"
        return size / (time.perf_counter() - started) / 1e6


def round_trips_us(port: int, count: int, payload: bytes = b"x" * 64) -> list[float]:
    samples = []
    with _connect(port) as sock:
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(payload)
            received = 0
            while received < len(payload):
                received += len(sock.recv(65536))
            samples.append((time.perf_counter() - started) * 1e6)
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _start(command: list[str]) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    return process, json.loads(process.stdout.readline())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--round-trips", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3, help="throughput runs; the best is kept")
    args = parser.parse_args()
    size = args.size_mib << 20

    upstream, ports = _start([sys.executable, __file__, "--upstream"])
    proxy_server, info = _start([sys.executable, "-m", "chaos.toxiproxy", "--port", "0"])
    ideal_relay, ideal = _start([sys.executable, __file__, "--ideal-relay", str(ports["sink"])])
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{info['port']}", timeout=30)
        listen = {}
        for name in ("sink", "echo"):
            created = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0",
                                                 "upstream": f"127.0.0.1:{ports[name]}"}).json()
            listen[name] = int(created["listen"].rsplit(":", 1)[1])

        direct_tp = max(throughput_mb_s(ports["sink"], size) for _ in range(args.runs))
        proxy_tp = max(throughput_mb_s(listen["sink"], size) for _ in range(args.runs))
        ideal_tp = max(throughput_mb_s(ideal["port"], size) for _ in range(args.runs))
        round_trips_us(ports["echo"], 200)
        direct_rtt = round_trips_us(ports["echo"], args.round_trips)
        proxy_rtt = round_trips_us(listen["echo"], args.round_trips)

        api.post("/proxies/echo/toxics", json={"type": "latency", "attributes": {"latency": 50}})
        latency_ms = statistics.median(round_trips_us(listen["echo"], 40)) / 1000
        api.post("/reset")
        rate_kb_s = 20_000
        api.post("/proxies/sink/toxics", json={"type": "bandwidth", "stream": "upstream",
                                               "attributes": {"rate": rate_kb_s}})
        limited_tp = throughput_mb_s(listen["sink"], 64 << 20)
        api.post("/reset")
    finally:
        for process in (proxy_server, upstream, ideal_relay):
            process.terminate()
            process.wait(10)

    p50_direct, p50_proxy = percentile(direct_rtt, 0.5), percentile(proxy_rtt, 0.5)
    rows = [
        ("throughput direct", f"{direct_tp:.0f} MB/s"),
        ("throughput proxy", f"{proxy_tp:.0f} MB/s"),
        ("throughput ratio (target >= 0.70)", f"{proxy_tp / direct_tp:.2f}x"),
        ("throughput ideal splice relay", f"{ideal_tp:.0f} MB/s ({ideal_tp / direct_tp:.2f}x direct)"),
        ("proxy vs ideal relay", f"{proxy_tp / ideal_tp:.2f}x"),
        ("RTT p50 direct / proxy", f"{p50_direct:.0f} / {p50_proxy:.0f} us"),
        ("RTT p99 direct / proxy", f"{percentile(direct_rtt, 0.99):.0f} / {percentile(proxy_rtt, 0.99):.0f} us"),
        ("added p50 RTT (target < 100 us)", f"{p50_proxy - p50_direct:.0f} us"),
        ("latency toxic 50 ms: median RTT", f"{latency_ms:.1f} ms (error {latency_ms - 50 - p50_proxy / 1000:+.1f} ms)"),
        (f"bandwidth toxic {rate_kb_s} KB/s: measured", f"{limited_tp * 1000:.0f} KB/s "
                                                        f"(ratio {limited_tp * 1000 / rate_kb_s:.3f})"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--upstream"]:
        upstream_main()
    elif sys.argv[1:2] == ["--ideal-relay"]:
        ideal_relay_main(int(sys.argv[2]))
    else:
        raise SystemExit(main())
