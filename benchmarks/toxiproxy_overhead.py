"""Overhead and accuracy of the embedded Toxiproxy server, against direct TCP, an ideal relay
and (with --real-toxiproxy) Shopify's toxiproxy-server, all measured in one run.

Client (this process), each relay and the upstream servers (a child process) run as separate
processes. Prints the throughput of a large transfer and the p50/p99 round trips of small
messages through each, their ratios, and the accuracy of latency and bandwidth toxics.
Targets: at least 0.9x the ideal relay's throughput and 2.5x a real Toxiproxy's; an added
p50 round trip no more than the real Toxiproxy's.

The ideal relay is the least any user-space relay can cost here: a process that does nothing
but splice(2) each direction in a blocking thread (no event loop, no API, no toxics). On two
cores loopback throughput swings by a third from one transfer to the next, so the targets take
turns, round after round, and each is judged by its median; round trips are taken in
interleaved blocks.

    python benchmarks/toxiproxy_overhead.py [--size-mib 256] [--round-trips 5000] [--rounds 21]
                                            [--real-toxiproxy PATH/TO/toxiproxy-server]
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


# --- starting the relays ---------------------------------------------------------------------

def _start(command: list[str]) -> tuple[subprocess.Popen, dict]:
    """A child that prints one JSON line (its ports) when ready."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    return process, json.loads(process.stdout.readline())


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def _start_real_toxiproxy(path: str) -> tuple[subprocess.Popen, str]:
    """toxiproxy-server on a free port, once its API answers; returns it and its URL.
    Go's flag package reads the single-dash flags, as does our own server's command line."""
    port = _free_port()
    process = subprocess.Popen([path, "-host", "127.0.0.1", "-port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(f"{url}/version", timeout=1).raise_for_status()
            return process, url
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit(f"{path} did not start a Toxiproxy API on port {port}") from None
            time.sleep(0.05)


def _version(api: httpx.Client) -> str:
    """The version a Toxiproxy API reports: JSON since 2.7.0, a bare string before 2.6.0."""
    text = api.get("/version").text.strip()
    try:
        return json.loads(text)["version"]
    except (ValueError, KeyError, TypeError):
        return text


def _proxies(api: httpx.Client, upstreams: dict[str, int]) -> dict[str, int]:
    """One proxy per upstream through a Toxiproxy API; returns their listen ports."""
    listen = {}
    for name, port in upstreams.items():
        response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0",
                                              "upstream": f"127.0.0.1:{port}"})
        response.raise_for_status()
        listen[name] = int(response.json()["listen"].rsplit(":", 1)[1])
    return listen


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


def median_throughputs(ports: dict[str, int], size: int, rounds: int) -> dict[str, float]:
    """Each target's median of `rounds` transfers, the targets taking turns in a rotating order
    so that a slow or a fast spell of the machine does not fall on one of them only."""
    samples: dict[str, list[float]] = {name: [] for name in ports}
    names = list(ports)
    for turn in range(rounds):
        for name in names[turn % len(names):] + names[:turn % len(names)]:
            samples[name].append(throughput_mb_s(ports[name], size))
    return {name: statistics.median(values) for name, values in samples.items()}


def interleaved_round_trips(ports: dict[str, int], count: int, blocks: int = 10) -> dict[str, list[float]]:
    """`count` round trips per target, taken in `blocks` turns."""
    for port in ports.values():
        round_trips_us(port, 200)  # warm up
    samples: dict[str, list[float]] = {name: [] for name in ports}
    for _ in range(blocks):
        for name, port in ports.items():
            samples[name] += round_trips_us(port, count // blocks)
    return samples


def toxic_accuracy(api: httpx.Client, listen: dict[str, int], p50_us: float) -> list[tuple[str, str]]:
    api.post("/proxies/echo/toxics", json={"type": "latency", "attributes": {"latency": 50}})
    latency_ms = statistics.median(round_trips_us(listen["echo"], 40)) / 1000
    api.post("/reset")
    rate_kb_s = 20_000
    api.post("/proxies/sink/toxics", json={"type": "bandwidth", "stream": "upstream",
                                           "attributes": {"rate": rate_kb_s}})
    limited_tp = throughput_mb_s(listen["sink"], 64 << 20)
    api.post("/reset")
    return [
        ("latency toxic 50 ms: median RTT", f"{latency_ms:.1f} ms (error {latency_ms - 50 - p50_us / 1000:+.1f} ms)"),
        (f"bandwidth toxic {rate_kb_s} KB/s: measured",
         f"{limited_tp * 1000:.0f} KB/s (ratio {limited_tp * 1000 / rate_kb_s:.3f})"),
    ]


def ratio_rows(throughput: dict[str, float], rtt: dict[str, list[float]]) -> list[tuple[str, str]]:
    """The printed comparison; "real" is there only when a real Toxiproxy was measured."""
    p50 = {name: percentile(samples, 0.5) for name, samples in rtt.items()}
    real = "real" in throughput
    rows = [
        ("throughput direct", f"{throughput['direct']:.0f} MB/s"),
        ("throughput ideal splice relay",
         f"{throughput['relay']:.0f} MB/s ({throughput['relay'] / throughput['direct']:.2f}x direct)"),
        ("throughput ours", f"{throughput['ours']:.0f} MB/s"),
        *([("throughput real Toxiproxy", f"{throughput['real']:.0f} MB/s")] if real else []),
        ("ours vs ideal relay (target >= 0.9)", f"{throughput['ours'] / throughput['relay']:.2f}x"),
        *([("ours vs real Toxiproxy (target >= 2.5)", f"{throughput['ours'] / throughput['real']:.2f}x")]
          if real else []),
        ("ours vs direct", f"{throughput['ours'] / throughput['direct']:.2f}x"),
        ("RTT p50 " + " / ".join(rtt), " / ".join(f"{p50[name]:.0f}" for name in rtt) + " us"),
        ("RTT p99 " + " / ".join(rtt), " / ".join(f"{percentile(s, 0.99):.0f}" for s in rtt.values()) + " us"),
        ("added p50 RTT ours", f"{p50['ours'] - p50['direct']:.0f} us"),
    ]
    if real:
        rows.append(("added p50 RTT real Toxiproxy (ours: no more)", f"{p50['real'] - p50['direct']:.0f} us"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--round-trips", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=21, help="throughput rounds; each target's median is kept")
    parser.add_argument("--real-toxiproxy", metavar="PATH",
                        help="a toxiproxy-server binary (Shopify's, 2.x) to measure in the same run")
    args = parser.parse_args()
    size = args.size_mib << 20

    children = []
    try:
        upstream, upstream_ports = _start([sys.executable, __file__, "--upstream"])
        children.append(upstream)
        ours_process, ours = _start([sys.executable, "-m", "chaos.toxiproxy", "--port", "0"])
        children.append(ours_process)
        relay, relay_ports = _start([sys.executable, __file__, "--ideal-relay", str(upstream_ports["sink"])])
        children.append(relay)
        ours_api = httpx.Client(base_url=f"http://127.0.0.1:{ours['port']}", timeout=30)
        ours_listen = _proxies(ours_api, upstream_ports)
        sinks = {"direct": upstream_ports["sink"], "ours": ours_listen["sink"], "relay": relay_ports["port"]}
        echoes = {"direct": upstream_ports["echo"], "ours": ours_listen["echo"]}
        version = None
        if args.real_toxiproxy:
            real_process, real_url = _start_real_toxiproxy(args.real_toxiproxy)
            children.append(real_process)
            real_api = httpx.Client(base_url=real_url, timeout=30)
            version = _version(real_api)
            real_listen = _proxies(real_api, upstream_ports)
            sinks["real"], echoes["real"] = real_listen["sink"], real_listen["echo"]

        throughput = median_throughputs(sinks, size, args.rounds)
        rtt = interleaved_round_trips(echoes, args.round_trips)
        accuracy = toxic_accuracy(ours_api, ours_listen, percentile(rtt["ours"], 0.5))
    finally:
        for process in children:
            process.terminate()
            process.wait(10)

    rows = ratio_rows(throughput, rtt)
    if version is not None:
        rows.insert(0, ("real Toxiproxy", f"{args.real_toxiproxy} (version {version})"))
    rows += accuracy
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
