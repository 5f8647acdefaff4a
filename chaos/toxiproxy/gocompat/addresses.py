"""Listen addresses the way Go's net package parses, resolves, binds and prints them.

Toxiproxy reports and compares listen addresses in Go's formats (`127.0.0.1:54321`,
`[::]:8474`) and returns Go's error texts on failure, so clients compare them as strings.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
from dataclasses import dataclass


class AddressError(Exception):
    """Resolving or binding failed; the message is Go's error text."""


def split_host_port(address: str) -> tuple[str, str]:
    """Go's net.SplitHostPort."""
    def error(reason: str) -> AddressError:
        return AddressError(f"address {address}: {reason}")

    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise error("missing ']' in address")
        rest = address[end + 1:]
        if not rest:
            raise error("missing port in address")
        if not rest.startswith(":") or ":" in rest[1:]:
            raise error("too many colons in address" if ":" in rest else "missing port in address")
        host, port = address[1:end], rest[1:]
        if "[" in host or "]" in host:
            raise error("unexpected '[' in address")
    else:
        index = address.rfind(":")
        if index < 0:
            raise error("missing port in address")
        host, port = address[:index], address[index + 1:]
        if ":" in host:
            raise error("too many colons in address")
        if "[" in host:
            raise error("unexpected '[' in address")
        if "]" in host:
            raise error("unexpected ']' in address")
    if "[" in port:
        raise error("unexpected '[' in address")
    if "]" in port:
        raise error("unexpected ']' in address")
    return host, port


def _parse_port(port: str) -> int:
    if port == "":
        return 0
    if port.isdigit():
        number = int(port)
        if number > 65535:
            raise AddressError(f"address {port}: invalid port")
        return number
    try:
        return socket.getservbyname(port, "tcp")
    except OSError:
        raise AddressError(f"lookup tcp/{port}: unknown port") from None


async def _resolve_host(host: str) -> str | None:
    """An IP literal, the first IPv4 address of a name (Go prefers IPv4), or None for wildcard."""
    if host == "":
        return None
    try:
        return str(ipaddress.ip_address(host.split("%")[0]))
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise AddressError(f"lookup {host}: no such host") from None
    addresses = [info[4][0] for info in infos]
    ipv4 = [a for a in addresses if ":" not in a]
    return (ipv4 or addresses)[0]


def format_address(ip: str | None, port: int) -> str:
    """Go's TCPAddr.String()."""
    if ip is None:
        return f":{port}"
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True)
class ResolvedAddress:
    ip: str | None
    port: int

    def __str__(self) -> str:
        return format_address(self.ip, self.port)


async def resolve(address: str) -> ResolvedAddress:
    """Go's net.ResolveTCPAddr("tcp", address); errors carry Go's resolver text.

    An empty address means every interface and an ephemeral port, as in Go."""
    if address == "":
        return ResolvedAddress(None, 0)
    host, port = split_host_port(address)
    return ResolvedAddress(await _resolve_host(host), _parse_port(port))


def _strerror(error: OSError) -> str:
    text = os.strerror(error.errno) if error.errno else str(error)
    return text[:1].lower() + text[1:]


async def bind_listener(address: str, backlog: int = 1024) -> tuple[socket.socket, str]:
    """Bind and listen like Go's net.Listen("tcp", address).

    Returns the listening socket and the bound address as Go prints it. A wildcard host
    listens dual-stack on `[::]` when IPv6 is available.
    """
    try:
        resolved = await resolve(address)
    except AddressError as error:
        raise AddressError(f"listen tcp: {error}") from None
    ip = resolved.ip
    wildcard = ip is None or ipaddress.ip_address(ip).is_unspecified
    candidates = []
    if wildcard and socket.has_ipv6:
        candidates.append((socket.AF_INET6, "::"))
    if wildcard:
        candidates.append((socket.AF_INET, "0.0.0.0"))
    else:
        candidates.append((socket.AF_INET6 if ":" in ip else socket.AF_INET, ip))
    last_error: OSError | None = None
    for family, host in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and wildcard:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((host, resolved.port))
            sock.listen(backlog)
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            last_error = error
            if error.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL) and wildcard:
                continue
            break
        bound_host, bound_port = sock.getsockname()[:2]
        return sock, format_address(bound_host, bound_port)
    assert last_error is not None
    raise AddressError(f"listen tcp {resolved}: bind: {_strerror(last_error)}")
