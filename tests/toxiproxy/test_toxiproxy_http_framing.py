"""Malformed HTTP framing sent as raw bytes gets the answer Toxiproxy's Go net/http server gives.

Statuses and bodies are those in the reference (docs of Toxiproxy 2.12.0 on the wire) and Go's
server.go: refusals before any handler are exact bytes with `Connection: close` and no
Content-Length; errors met while a handler reads the body come back as Toxiproxy's JSON error.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from toxiproxy_support import ServerThread

from chaos.toxiproxy.gocompat.httpserver import GoServerTimeouts

GO_400 = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"
MISSING_HOST = (b"HTTP/1.1 400 Bad Request: missing required Host header\r\nContent-Type: text/plain; "
                b"charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: missing required Host header")
UNSUPPORTED_VERSION = (b"HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version\r\nContent-Type: "
                       b"text/plain; charset=utf-8\r\nConnection: close\r\n\r\n505 HTTP Version Not Supported: "
                       b"unsupported protocol version")
GO_501 = (b"HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
          b"Unsupported transfer encoding")
GO_431 = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
          b"Connection: close\r\n\r\n431 Request Header Fields Too Large")
PROXY_BODY = b'{"name":"framed","upstream":"127.0.0.1:9","enabled":false}'
SHORT_TIMEOUTS = GoServerTimeouts(read_s=1.5, write_s=5.0, idle_s=3.0)


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_until_close(sock: socket.socket) -> bytes:
    """Everything until the server closes; fails the test if it keeps the connection open."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def read_response(sock: socket.socket, head_request: bool = False) -> tuple[bytes, dict[str, str], bytes]:
    """One response with a Content-Length: (status line, headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    while not head_request and len(body) < int(headers.get("Content-Length", 0)):
        body += sock.recv(65536)
    return status.encode(), headers, body


def exchange_until_close(port: int, request: bytes) -> bytes:
    with connect(port) as sock:
        sock.sendall(request)
        return read_until_close(sock)


@pytest.fixture
def port(api, toxiproxy: ServerThread) -> int:
    """The shared server's API port; proxies created by a test are removed after it."""
    return toxiproxy.server.port


@pytest.fixture(scope="module")
def impatient_server() -> Iterator[ServerThread]:
    """A server with short read/idle timeouts, so timeout behaviour is observable quickly."""
    server = ServerThread(http_timeouts=SHORT_TIMEOUTS)
    try:
        yield server
    finally:
        server.stop()


def test_timeouts_default_to_toxiproxys_http_server_settings():
    assert GoServerTimeouts() == GoServerTimeouts(read_s=15.0, write_s=30.0, idle_s=60.0)


def test_bad_chunk_size_gets_toxiproxys_json_400_and_a_close(port):
    reply = exchange_until_close(port, b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nContent-Type: text/plain; charset=utf-8\r\n" in head
    assert b"\r\nX-Content-Type-Options: nosniff\r\n" in head
    assert head.endswith(b"\r\nConnection: close")
    assert body == b'{"error":"bad request body: invalid byte in chunk length","status":400}\n'


@pytest.mark.parametrize(("chunks", "reason"), [
    (b"1\n{\r\n", "chunked line ends with bare LF"),
    (b"1\r\r\n{\r\n", "invalid CR in chunked line"),
    (b"\r\n", "empty hex number for chunk length"),
    (b"11111111111111111\r\n", "http chunk length too large"),
    (b'2\r\n{"XX', "malformed chunked encoding"),
])
def test_chunk_framing_errors_carry_gos_reader_texts(port, chunks, reason):
    reply = exchange_until_close(port, b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    assert reply.endswith(f'{{"error":"bad request body: {reason}","status":400}}\n'.encode())


def test_a_whole_json_value_before_a_chunk_error_is_still_served_then_closed(port):
    chunk = b"%x\r\n%s\r\n" % (len(PROXY_BODY), PROXY_BODY)
    reply = exchange_until_close(
        port, b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + b"zz\r\n")
    assert reply.startswith(b"HTTP/1.1 201 Created\r\n")
    assert b"\r\nConnection: close\r\n" in reply


def test_conflicting_content_lengths_get_gos_plain_400(port):
    reply = exchange_until_close(
        port, b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx")
    assert reply == GO_400


@pytest.mark.parametrize("length", [b"", b"-1", b"+5", b"0x10", b"5, 5", b"99999999999999999999"])
def test_invalid_content_length_gets_gos_plain_400(port, length):
    reply = exchange_until_close(port, b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n")
    assert reply == GO_400


def test_the_same_content_length_twice_is_accepted(port):
    with connect(port) as sock:
        sock.sendall(b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(PROXY_BODY), len(PROXY_BODY), PROXY_BODY))
        assert read_response(sock)[0] == b"HTTP/1.1 201 Created"


def test_chunked_overrides_a_valid_content_length(port):
    chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(PROXY_BODY), PROXY_BODY)
    with connect(port) as sock:
        sock.sendall(b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunk)
        status, headers, _ = read_response(sock)
        assert status == b"HTTP/1.1 201 Created"
        assert "Connection" not in headers
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")  # the framing stayed in step
        assert read_response(sock)[2] == b'{"version": "2.12.0"}\n'


def test_chunked_with_conflicting_content_lengths_is_still_refused(port):
    reply = exchange_until_close(port, b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                       b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert reply == GO_400


@pytest.mark.parametrize("encoding", [b"Transfer-Encoding: gzip", b"Transfer-Encoding: gzip, chunked",
                                      b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"])
def test_unknown_or_repeated_transfer_encodings_get_gos_501(port, encoding):
    assert exchange_until_close(port, b"POST /proxies HTTP/1.1\r\nHost: x\r\n" + encoding + b"\r\n\r\n") == GO_501


def test_http11_request_without_host_is_refused_with_the_reason(port):
    assert exchange_until_close(port, b"GET /version HTTP/1.1\r\n\r\n") == MISSING_HOST


@pytest.mark.parametrize("request_bytes", [
    b"GET /version HTTP/9.9\r\nHost: x\r\n\r\n", b"GET /version HTTP/0.9\r\nHost: x\r\n\r\n"])
def test_unsupported_http_version_gets_505(port, request_bytes):
    assert exchange_until_close(port, request_bytes) == UNSUPPORTED_VERSION


@pytest.mark.parametrize("request_bytes", [
    b"NOT A REQUEST\r\n\r\n", b"GET /version HTTP/1.10\r\nHost: x\r\n\r\n", b"GET  /version HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET version HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /version HTTP/1.1\r\n Host: x\r\n\r\n",
    b"GET /version HTTP/1.1\r\nHost x\r\n\r\n", b"GET /version HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    b"GET /version HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
])
def test_malformed_heads_get_gos_plain_400(port, request_bytes):
    assert exchange_until_close(port, request_bytes) == GO_400


@pytest.mark.parametrize(("header", "reason"), [
    (b"Host: a b", b"malformed Host header"), (b"Host: x\r\nBad Name: y", b"invalid header name")])
def test_server_level_header_checks_name_their_reason(port, header, reason):
    reply = exchange_until_close(port, b"GET /version HTTP/1.1\r\n" + header + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 Bad Request: " + reason + b"\r\n")
    assert reply.endswith(b"\r\n\r\n400 Bad Request: " + reason)


def test_a_malformed_request_line_is_answered_without_waiting_for_the_rest(port):
    with connect(port, timeout=2) as sock:
        sock.sendall(b"NOT A REQUEST\r\n")  # no blank line: Go judges the line on its own
        assert read_until_close(sock) == GO_400


def test_http10_request_gets_an_http10_answer_and_a_close(port):
    reply = exchange_until_close(port, b"GET /version HTTP/1.0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"Connection:" not in reply
    assert reply.endswith(b'\r\n\r\n{"version": "2.12.0"}\n')


def test_http10_keep_alive_is_honoured(port):
    with connect(port) as sock:
        for _ in range(2):
            sock.sendall(b"GET /version HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _ = read_response(sock)
            assert status == b"HTTP/1.0 200 OK"
            assert headers["Connection"] == "keep-alive"


def test_expect_100_continue_gets_an_interim_answer_and_others_get_417(port):
    with connect(port) as sock:
        sock.sendall(b"POST /proxies HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
                     % len(PROXY_BODY))
        assert sock.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(PROXY_BODY)
        assert read_response(sock)[0] == b"HTTP/1.1 201 Created"
    reply = exchange_until_close(port, b"GET /version HTTP/1.1\r\nHost: x\r\nExpect: coffee\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\n")
    assert reply.endswith(b"\r\nContent-Length: 0\r\n\r\n")


def test_head_requests_get_headers_only(port):
    with connect(port) as sock:
        sock.sendall(b"HEAD /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = read_response(sock, head_request=True)
        assert (status, headers["Content-Length"], body) == (b"HTTP/1.1 404 Not Found", "19", b"")
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")  # no body bytes were in the way
        assert read_response(sock)[2] == b'{"version": "2.12.0"}\n'


def test_headers_over_one_megabyte_get_431_then_fin(port):
    filler = b"X-Filler: " + b"a" * ((1 << 20) + 4096) + b"\r\n"
    with connect(port) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n" + filler + b"\r\n")
        assert read_until_close(sock) == GO_431


def test_headers_just_under_the_limit_are_served(port):
    filler = b"X-Filler: " + b"a" * ((1 << 20) - 100) + b"\r\n"
    with connect(port) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n" + filler + b"\r\n")
        assert read_response(sock)[0] == b"HTTP/1.1 200 OK"


def test_a_dribbling_client_is_cut_off_at_the_read_timeout_while_others_are_served(impatient_server):
    """Go's read deadline ends the head; the cut-short request line is then judged as it stands."""
    port = impatient_server.server.port
    with connect(port, timeout=10) as slow:
        started = time.monotonic()
        served_meanwhile = []
        reply = None
        slow.settimeout(0.3)
        for byte in b"GET /version HTTP/1.1\r\nHost: x\r\n":
            with connect(port) as other:
                other.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
                served_meanwhile.append(read_response(other)[0])
            slow.sendall(bytes([byte]))
            try:
                reply = slow.recv(1024)
            except TimeoutError:
                continue  # still open: keep dribbling
            break
        cut_off_after = time.monotonic() - started
        slow.settimeout(5)
        assert reply is not None, "the slow client was never cut off"
        assert reply + read_until_close(slow) == GO_400
        assert SHORT_TIMEOUTS.read_s - 0.1 <= cut_off_after <= SHORT_TIMEOUTS.read_s + 1.5
        assert len(served_meanwhile) >= 3 and set(served_meanwhile) == {b"HTTP/1.1 200 OK"}


def test_a_head_that_stops_after_a_whole_header_line_is_closed_silently(impatient_server):
    with connect(impatient_server.server.port, timeout=10) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert read_until_close(sock) == b""
        assert time.monotonic() - started <= SHORT_TIMEOUTS.read_s + 1.5


def test_a_body_that_stops_coming_fails_at_the_read_timeout_with_gos_text(impatient_server):
    port = impatient_server.server.port
    with connect(port, timeout=10) as sock:
        sock.sendall(b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"name\":")
        with connect(port) as other:  # the stalled body holds up no one else
            other.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(other)[0] == b"HTTP/1.1 200 OK"
        local, peer = sock.getpeername(), sock.getsockname()
        reply = read_until_close(sock)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    text = f"read tcp {local[0]}:{local[1]}-\\u003e{peer[0]}:{peer[1]}: i/o timeout"  # Go's JSON escapes >
    assert reply.endswith(f'{{"error":"bad request body: {text}","status":400}}\n'.encode())


def test_an_idle_keep_alive_connection_is_closed_at_the_idle_timeout(impatient_server):
    with connect(impatient_server.server.port, timeout=10) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(sock)
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert SHORT_TIMEOUTS.idle_s - 0.2 <= time.monotonic() - started <= SHORT_TIMEOUTS.idle_s + 1.5
