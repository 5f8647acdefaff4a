"""A request head beyond the service's bound is answered 431 and costs the service no memory to speak
of, whether it is one huge header or very many; the service keeps serving afterwards."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from chaos.stack.embedded import EmbeddedStack
from service.http_protocol import MAX_HEAD_BYTES

pytestmark = pytest.mark.slow


def send_raw(url: str, head: bytes) -> bytes:
    """Send ``head`` on a fresh connection and read the answer until the service closes it."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        try:
            sock.sendall(head)
        except OSError:
            pass  # the service may close before it has read everything: the answer is what counts
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


HEAD_SENT = 16 * 2**20  # what an attacker sends: without the bound, the service would hold all of it
RSS_GROWTH_LIMIT = 4 * 2**20


@pytest.mark.parametrize("shape", ["one huge header", "many headers"])
def test_an_oversized_head_is_431_and_memory_stays_flat(stack: EmbeddedStack, shape: str):
    info = stack.info
    service = psutil.Process(info.service_pid)
    before = service.memory_info().rss
    headers = (b"X-Big: " + b"a" * HEAD_SENT + b"\r\n" if shape == "one huge header"
               else b"".join(b"X-H%07d: v\r\n" % i for i in range(HEAD_SENT // 14)))
    answer = send_raw(info.service_url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    growth = service.memory_info().rss - before
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.1f} MiB for a {HEAD_SENT >> 20} MiB head"
    assert httpx.get(f"{info.service_url}/healthz", timeout=5).status_code == 200


def test_a_head_just_under_the_bound_is_served(stack: EmbeddedStack):
    filler = b"X-Fill: " + b"a" * (MAX_HEAD_BYTES // 2) + b"\r\n"
    answer = send_raw(stack.info.service_url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      + filler + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
