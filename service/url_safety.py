"""Which reference image URLs may be handed to the model host, which fetches them from its own network.

A URL is refused when it carries credentials (``user:pass@host``) or names a host that is not on
the public internet: ``localhost``, or a literal address that is loopback, link-local, private,
unspecified, multicast or reserved. Literal addresses are recognised in every notation a URL
parser or ``inet_aton`` accepts (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``), and IPv6
addresses that embed an IPv4 one (mapped, compatible, 6to4, Teredo, NAT64) are judged by it too.
Host names are not resolved: the model host resolves them, not this service.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_INET_ATON_FORM = re.compile(r"[0-9][0-9a-fA-FxX.]*")  # decimal, octal and hex parts, 1 to 4 of them
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CATEGORIES = ("unspecified", "loopback", "link_local", "multicast", "reserved", "private")  # most telling first


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally (any IPv4 notation, IPv6 with or without zone), or None for a name."""
    host = host.removeprefix("[").removesuffix("]").rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _INET_ATON_FORM.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in _NAT64 or (address.packed[:12] == bytes(12) and int(address) > 1):  # NAT64, or ::a.b.c.d
        return ipaddress.IPv4Address(address.packed[12:])
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why the model host must not be sent to ``address``, or None if it is a public one."""
    candidates = [address]
    if isinstance(address, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(address)) is not None:
        candidates.insert(0, embedded)  # name the IPv4 address the client hid
    for candidate in candidates:
        for category in _CATEGORIES:
            if getattr(candidate, f"is_{category}"):
                return f"points at {candidate}, which is {category.replace('_', '-')}"
        if not candidate.is_global:
            return f"points at {candidate}, which is not public"
    return None


def url_problem(url: str) -> str | None:
    """Why ``url`` must not be fetched by the model host, or None. A URL that cannot be parsed at all
    is left to the URL validator, which says so."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if "@" in parts.netloc:
        return "must not contain credentials (user:password@)"
    if not host:
        return None
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "points at localhost"
    address = literal_address(name)
    return address_problem(address) if address is not None else None
