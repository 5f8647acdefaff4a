"""Reference image URLs: every notation of a non-public address is refused, public ones pass."""

from __future__ import annotations

import pytest

from service.url_safety import url_problem

REFUSED = {
    "http://127.0.0.1/": "loopback",
    "http://2130706433/": "loopback",  # decimal
    "http://0177.0.0.1/": "loopback",  # octal
    "http://0x7f.1/": "loopback",  # hex, short form
    "http://0x7f000001/": "loopback",
    "http://127.1/": "loopback",
    "http://[::1]/": "loopback",
    "http://[::ffff:127.0.0.1]/": "loopback",  # IPv4-mapped
    "http://[::ffff:7f00:1]/": "loopback",
    "http://[::127.0.0.1]/": "loopback",  # IPv4-compatible
    "http://[2002:7f00:1::]/": "loopback",  # 6to4
    "http://[64:ff9b::7f00:1]/": "loopback",  # NAT64
    "http://[fe80::1%25eth0]/": "link-local",  # zone id
    "http://169.254.169.254/latest/meta-data/": "link-local",
    "http://[::ffff:169.254.169.254]/": "link-local",
    "http://10.1.2.3/": "private",
    "http://172.16.0.1/": "private",
    "http://192.168.0.1/": "private",
    "http://0.0.0.0/": "unspecified",
    "http://0/": "unspecified",
    "http://[::]/": "unspecified",
    "http://224.0.0.1/": "multicast",
    "http://[ff02::1]/": "multicast",
    "http://240.0.0.1/": "reserved",
    "http://100.64.0.1/": "not public",  # carrier-grade NAT
    "http://localhost:8000/": "localhost",
    "http://LOCALHOST./": "localhost",
    "http://metadata.localhost/": "localhost",
    "https://user:pw@example.com/a.png": "credentials",
    "https://token@example.com/a.png": "credentials",
    "http://example.com\\@127.0.0.1/": "credentials",  # parsers disagree on the host: refused either way
}

ALLOWED = ["https://example.com/cat.png", "https://8.8.8.8/a.png", "http://[2606:4700:4700::1111]/a.png",
           "https://cdn.example.org:8443/i/1.webp?size=2", "http://deadbeef/a.png", "http://1.1.1.1.example/x"]


@pytest.mark.parametrize("url, why", REFUSED.items())
def test_non_public_targets_are_refused(url: str, why: str):
    problem = url_problem(url)
    assert problem is not None and why in problem, problem


@pytest.mark.parametrize("url", ALLOWED)
def test_public_targets_pass(url: str):
    assert url_problem(url) is None
