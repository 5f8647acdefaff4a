"""Fuzzing our Toxiproxy-compatible server: its API through schemathesis, its HTTP framing raw.

schemathesis, driven by docs/toxiproxy-openapi.yaml, checks the API operations. Raw-socket
fuzzing (hypothesis) checks the HTTP front below them: mutated valid requests and random
header and chunk framing must each be answered or closed within a bound, never with a 500, and
the server must go on serving `GET /version` after every one.

The server runs as its own process on a free loopback port; schemathesis's CLI (`st run`) fuzzes
every documented operation, bounded in examples and time, and the test checks its exit code,
its JUnit report (how many cases ran) and that the server still answers afterwards.

Toxiproxy answers a listen failure (port taken, bad address) with a 500 carrying Go's error
text, so generated listen addresses can legitimately produce a 500 on the operations that
bind. A small schemathesis config accepts 500 on exactly those operations, and the test then
reads the HAR report to require that every 500 seen is such a network error and nothing else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.stack.processes import ChildProcess, free_port, http_ok, wait_until
from chaos.toxiproxy import start_server
from chaos.toxiproxy.gocompat.httpserver import GoServerTimeouts

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "toxiproxy-openapi.yaml"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
OPERATIONS_THAT_BIND = ["createProxy", "populateProxies", "updateProxy", "patchProxy"]
GO_NETWORK_ERROR = re.compile(r"(listen tcp|lookup )[^\n]*")
DOCUMENTED_OPERATIONS = 16  # the JUnit report has one test case per operation
MIN_REQUESTS = 300  # about 1000 with these settings; far fewer means generation broke down

# Accept 500 where Toxiproxy documents it (listen failures); the HAR audit below keeps it honest.
SCHEMATHESIS_CONFIG = f"""
[[operations]]
include-operation-id = {json.dumps(OPERATIONS_THAT_BIND)}
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "500"]
"""


@pytest.fixture
def toxiproxy_url(tmp_path: Path) -> Iterator[str]:
    """Our server as a child process, with one proxy and one toxic for the schema's examples."""
    port = free_port()
    server = ChildProcess("toxiproxy", [sys.executable, "-m", "chaos.toxiproxy", "--host", "127.0.0.1",
                                        "--port", str(port), "--proxy-metrics"], log_dir=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(http_ok(f"{url}/version"), timeout_s=20, what="toxiproxy", process=server.popen)
        httpx.post(f"{url}/proxies", timeout=5, json={
            "name": "fuzzed", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}).raise_for_status()
        httpx.post(f"{url}/proxies/fuzzed/toxics", timeout=5, json={"type": "latency"}).raise_for_status()
        yield url
    finally:
        server.stop()


def run_schemathesis(url: str, report_dir: Path) -> subprocess.CompletedProcess:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    config = report_dir / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    return subprocess.run(
        [st, "--config-file", str(config), "run", str(SCHEMA), "--url", url, "--checks", CHECKS,
         "--max-examples", "30", "--seed", "1", "--request-timeout", "10",
         "--suppress-health-check", "all", "--report", "junit,har", "--report-dir", str(report_dir)],
        capture_output=True, text=True, timeout=180, cwd=report_dir,
    )


def fuzzed_test_cases(report_dir: Path) -> int:
    junit = next(report_dir.glob("junit*.xml"))
    return len(ElementTree.parse(junit).getroot().findall(".//testcase"))


def exchanges(report_dir: Path) -> list[dict]:
    """Every request schemathesis sent, with its response (HAR entries)."""
    return json.loads(next(report_dir.glob("har*.json")).read_text())["log"]["entries"]


def server_errors(entries: list[dict]) -> list[str]:
    """The `error` text of every 5xx response."""
    errors = []
    for entry in entries:
        if entry["response"]["status"] >= 500:
            body = entry["response"]["content"].get("text", "")
            try:
                errors.append(json.loads(body)["error"])
            except (ValueError, KeyError, TypeError):
                errors.append(body)
    return errors


@pytest.mark.slow
def test_fuzzing_the_toxiproxy_api_finds_no_failure(toxiproxy_url: str, tmp_path: Path):
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    result = run_schemathesis(toxiproxy_url, report_dir)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert fuzzed_test_cases(report_dir) == DOCUMENTED_OPERATIONS
    entries = exchanges(report_dir)
    assert len(entries) >= MIN_REQUESTS
    unexpected = [error for error in server_errors(entries) if not GO_NETWORK_ERROR.fullmatch(error)]
    assert unexpected == [], "5xx responses that are not Toxiproxy listen/lookup failures"
    assert httpx.get(f"{toxiproxy_url}/version", timeout=5).json() == {"version": "2.12.0"}


# --- raw HTTP framing -------------------------------------------------------------------------

FUZZ_TIMEOUTS = GoServerTimeouts(read_s=0.25, write_s=2.0, idle_s=0.25)
ANSWER_BOUND_S = 3.0
"""Generous against the 0.25 s timeouts: a connection still open and silent after this hangs."""
STATUS_LINE = re.compile(rb"(?:\A|\n)HTTP/1\.[01] (\d{3})")
ALLOWED_5XX = {501, 505}  # Go's answers to unknown transfer encodings and protocol versions

PROXY_BODY = b'{"name":"raw","listen":"127.0.0.1:0","upstream":"127.0.0.1:9","enabled":false}'
TOXIC_BODY = b'{"type":"latency","attributes":{"latency":10}}'
VALID_REQUESTS = [
    b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /proxies HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(PROXY_BODY), PROXY_BODY),
    b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
    % (len(PROXY_BODY), PROXY_BODY),
    b"POST /proxies/fuzzed/toxics HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n%s"
    % (len(TOXIC_BODY), TOXIC_BODY),
    b"PATCH /proxies/fuzzed HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n{\"enabled\":false}",
    b"DELETE /proxies/nothing HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
]
FRAMING_HEADERS = st.sampled_from([
    b"Host: x", b"Host: a b", b"Content-Length: 5", b"Content-Length: 0", b"Content-Length: -1",
    b"Content-Length: 99999999999999999999", b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip",
    b"Transfer-Encoding: chunked, chunked", b"Expect: 100-continue", b"Expect: x", b"Connection: close",
    b"Connection: keep-alive", b"Trailer: Content-Length", b" folded", b"\tfolded", b"Bad Name: x",
    b"X: \x01", b"NoColon", b": empty name",
])


class RawServer:
    """Our server with short read and idle timeouts, on an event loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server = self._call(start_server(http_timeouts=FUZZ_TIMEOUTS))
        self.port = self.server.port

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def stop(self) -> None:
        self._call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    try:
        httpx.post(f"{server.server.url}/proxies", timeout=5, json={
            "name": "fuzzed", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9", "enabled": False})
        yield server
    finally:
        server.stop()


def exchange_problem(port: int, request: bytes, half_close: bool) -> str | None:
    """What is wrong with how the server took `request`: a hang or a 5xx; None if nothing."""
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_BOUND_S) as sock:
        started = time.monotonic()
        try:
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before taking everything: read its answer
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
                if time.monotonic() - started > ANSWER_BOUND_S:
                    return f"still talking after {ANSWER_BOUND_S} s: {reply[:200]!r}"
        except TimeoutError:
            return f"no close within {ANSWER_BOUND_S} s after {reply[:200]!r}"
        except ConnectionError:
            pass
    for status in STATUS_LINE.findall(reply):
        code = int(status)
        if code >= 500 and code not in ALLOWED_5XX and not GO_NETWORK_ERROR.search(reply.decode("latin-1")):
            return f"answered {code}: {reply[:300]!r}"
    return None


def still_serving(port: int) -> bool:
    """A normal `GET /version` on a fresh connection gets its 200 and Toxiproxy's version."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply.startswith(b"HTTP/1.1 200 OK\r\n") and reply.endswith(b'\r\n\r\n{"version": "2.12.0"}\n')


@st.composite
def mutated_valid_requests(draw) -> bytes:
    """A valid request with a few bytes flipped, inserted, deleted, or its tail cut off."""
    data = bytearray(draw(st.sampled_from(VALID_REQUESTS)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "crlf"]))
        if action == "flip" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.sampled_from([b"\r\n", b"\n", b" ", b":", b"0", b"\x00", b"zz"]))
        elif action == "delete":
            del data[position:position + draw(st.integers(1, 4))]
        elif action == "truncate":
            del data[position:]
        elif action == "crlf":
            data[:] = data.replace(b"\r\n", b"\n", 1)
    return bytes(data)


@st.composite
def random_framing(draw) -> bytes:
    """A request line, a random mix of framing headers, and random chunk framing after them."""
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"G\x01T"]))
    target = draw(st.sampled_from([b"/version", b"/proxies", b"//proxies", b"*", b"/%zz", b"http://x/version"]))
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.5", b"HTTP/1"]))
    headers = draw(st.lists(FRAMING_HEADERS, max_size=5))
    chunks = draw(st.lists(st.tuples(
        st.sampled_from([b"0", b"1", b"5", b"10", b"zz", b"", b"1;ext=1", b"fffffffffffffffff"]),
        st.sampled_from([b"\r\n", b"\n", b"\r\r\n"]),
        st.binary(max_size=8)), max_size=3))
    body = b"".join(size + end + data + b"\r\n" for size, end, data in chunks)
    return method + b" " + target + b" " + version + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + body


FUZZ_SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ_SETTINGS
@given(request=st.one_of(mutated_valid_requests(), random_framing()),
       half_close=st.sampled_from([True, True, True, False]))
def test_raw_request_bytes_never_hang_or_500_the_api(raw_server, caplog, request, half_close):
    with caplog.at_level(logging.ERROR, logger="chaos.toxiproxy"):
        problem = exchange_problem(raw_server.port, request, half_close)
        assert problem is None, f"{request!r}: {problem}"
        assert still_serving(raw_server.port), f"the API stopped serving after {request!r}"
    assert [r.getMessage() for r in caplog.records if r.name == "chaos.toxiproxy"] == []


# --- the checks above catch what they guard against -------------------------------------------

class _MisbehavingServer:
    """A listener that answers every connection with `reply` (None: never answers, never closes)."""

    def __init__(self, reply: bytes | None) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._reply = reply
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        self._held.append(conn)
        if self._reply is not None:
            conn.sendall(self._reply)
            conn.close()

    def close(self) -> None:
        self._listener.close()
        for conn in self._held:
            conn.close()


@pytest.mark.parametrize(("reply", "problem"), [
    (None, "no close within"),
    (b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", "answered 500"),
    (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", "answered 503"),
])
def test_the_raw_check_reports_hangs_and_server_errors(reply, problem):
    server = _MisbehavingServer(reply)
    try:
        assert problem in (exchange_problem(server.port, VALID_REQUESTS[0], half_close=True) or "")
    finally:
        server.close()


def test_the_raw_check_accepts_gos_own_5xx_answers():
    server = _MisbehavingServer(b"HTTP/1.1 501 Not Implemented\r\nConnection: close\r\n\r\nUnsupported transfer encoding")
    try:
        assert exchange_problem(server.port, VALID_REQUESTS[0], half_close=True) is None
    finally:
        server.close()
