"""Go's `url.ParseRequestURI` for a request target: which targets are refused, and the path.

Go refuses a target with control bytes, an empty one, a relative one without a scheme, a bad
`%` escape, a bad port or a host with bytes no host may have; the server answers those with a
plain `400 Bad Request`. gorilla/mux then routes on the unescaped path.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes


class BadRequestUri(ValueError):
    pass


_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_HOST_BYTE = re.compile(rb"[A-Za-z0-9!$&'()*+,;=:\[\]<>\"\-_.~%\x80-\xff]*\Z")
_USERINFO_BYTE = re.compile(rb"[A-Za-z0-9\-._:~!$&'()*+,;=%@]*\Z")
_OPTIONAL_PORT = re.compile(rb"(:[0-9]*)?\Z")


def _split_scheme(target: bytes) -> tuple[bytes, bytes]:
    """Go's getScheme: a leading run of letters (then letters, digits, `+-.`) before `:`."""
    for index, byte in enumerate(target):
        char = chr(byte)
        if char.isascii() and char.isalpha():
            continue
        if char.isascii() and (char.isdigit() or char in "+-."):
            if index == 0:
                return b"", target
            continue
        if char == ":":
            if index == 0:
                raise BadRequestUri("missing protocol scheme")
            return target[:index].lower(), target[index + 1:]
        return b"", target
    return b"", target


def _check_host(host: bytes) -> None:
    """Go's parseHost: a bracketed IPv6 literal or a name, an optional numeric port."""
    if host.startswith(b"["):
        close = host.rfind(b"]")
        if close < 0:
            raise BadRequestUri("missing ']' in host")
        port = host[close + 1:]
    else:
        colon = host.rfind(b":")
        port = host[colon:] if colon >= 0 else b""
    if not _OPTIONAL_PORT.match(port):
        raise BadRequestUri("invalid port")
    if not _HOST_BYTE.match(host) or _BAD_ESCAPE.search(host):
        raise BadRequestUri("invalid host")
    for escape in re.finditer(rb"%([0-9A-Fa-f]{2})", host):
        if int(escape.group(1), 16) < 0x80 and escape.group(1) != b"25":
            raise BadRequestUri("invalid URL escape in host")


def _check_authority(authority: bytes) -> None:
    at = authority.rfind(b"@")
    _check_host(authority[at + 1:])
    if at >= 0:
        userinfo = authority[:at]
        if not _USERINFO_BYTE.match(userinfo) or _BAD_ESCAPE.search(userinfo):
            raise BadRequestUri("invalid userinfo")


def parse_request_target(target: bytes, method: str) -> tuple[str, str]:
    """The (unescaped path, raw query) of a request target, or BadRequestUri as Go refuses it."""
    if method == "CONNECT" and not target.startswith(b"/"):
        target = b"http://" + target
    if _CONTROL.search(target):
        raise BadRequestUri("invalid control character in URL")
    if not target:
        raise BadRequestUri("empty url")
    if target == b"*":
        return "*", ""
    scheme, rest = _split_scheme(target)
    if rest.endswith(b"?") and rest.count(b"?") == 1:
        rest, query = rest[:-1], b""
    else:
        rest, _, query = rest.partition(b"?")
    if not rest.startswith(b"/"):
        if scheme:
            return "", query.decode("latin-1")  # an opaque URL: Go's Path is empty
        raise BadRequestUri("invalid URI for request")
    if scheme and rest.startswith(b"//"):
        authority, slash, path = rest[2:].partition(b"/")
        _check_authority(authority)
        rest = slash + path
    if _BAD_ESCAPE.search(rest):
        raise BadRequestUri("invalid URL escape")
    return unquote_to_bytes(rest).decode("utf-8", "replace"), query.decode("latin-1")
