"""Reading one request head the way Go's net/http server does, and refusing it as Go would.

The order of checks follows Go (`conn.readRequest`, `http.readRequest`, `textproto`,
`readTransfer`), because it decides which answer a malformed request gets: the request line is
judged as soon as it is complete, each header line once the first byte of the next one shows it
is not continued, then Host, Transfer-Encoding and Content-Length, the protocol version, and the
Host header's presence and bytes. Refusals are the exact bytes Go writes: no Date, no
Content-Length, `Connection: close`, and the connection closed after them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .connreader import EOF, LIMIT, TIMEOUT, ConnReader, ReadStop
from .requesturi import BadRequestUri, parse_request_target

MAX_HEADER_BYTES = 1 << 20
"""Go's DefaultMaxHeaderBytes; Toxiproxy's http.Server does not change it."""
HEAD_READ_LIMIT = MAX_HEADER_BYTES + 4096
"""Go lets the head use MaxHeaderBytes plus its 4 KiB of bufio slack before answering 431."""

_ERROR_HEADERS = b"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_HEADER_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*\Z")
_HOST_VALUE = re.compile(rb"[0-9A-Za-z!$%&()*+,\-.:;=\[\]'_~]*\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])\Z")
_BAD_TRAILER_KEYS = {"Transfer-Encoding", "Trailer", "Content-Length"}


class SilentClose(Exception):
    """Go closes without answering: the peer went away, or the head did not come in time."""


class Refusal(Exception):
    """The bytes Go writes before closing; `close_write_and_wait` for its 431 (FIN, 500 ms)."""

    def __init__(self, wire: bytes, close_write_and_wait: bool = False) -> None:
        super().__init__(wire.split(b"\r\n", 1)[0].decode("latin-1"))
        self.wire = wire
        self.close_write_and_wait = close_write_and_wait

    @classmethod
    def bad_request(cls, reason: str = "") -> Refusal:
        return cls.status(400, "Bad Request", reason)

    @classmethod
    def status(cls, code: int, text: str, reason: str = "") -> Refusal:
        """Go's statusError answer: the reason goes on the status line and in the body."""
        public = f"{code} {text}: {reason}" if reason else f"{code} {text}"
        return cls(b"HTTP/1.1 " + public.encode() + _ERROR_HEADERS + public.encode())

    @classmethod
    def too_large(cls) -> Refusal:
        public = b"431 Request Header Fields Too Large"
        return cls(b"HTTP/1.1 " + public + _ERROR_HEADERS + public, close_write_and_wait=True)

    @classmethod
    def unsupported_transfer_encoding(cls) -> Refusal:
        return cls(b"HTTP/1.1 501 Not Implemented" + _ERROR_HEADERS + b"Unsupported transfer encoding")


class _Malformed(Exception):
    """What Go reports as a plain `400 Bad Request` (or 431 once the head limit is spent)."""


class MalformedHeader(_Malformed):
    """A header (or trailer) section textproto refuses, with its error text."""


class _UnsupportedTransferEncoding(Exception):
    """A Transfer-Encoding other than one `chunked`: Go answers 501."""


@dataclass
class RequestHead:
    method: str
    target: str
    path: str
    query: str
    version: tuple[int, int]
    headers: dict[str, list[str]] = field(default_factory=dict)
    content_length: int | None = 0
    """Body size; None for a chunked body."""

    @property
    def is_http11(self) -> bool:
        """Go's ProtoAtLeast(1, 1): HTTP/1.1 answers and keep-alive by default."""
        return self.version >= (1, 1)

    def first(self, name: str) -> str:
        """Go's Header.Get: the first value, or an empty string."""
        return self.headers.get(name, [""])[0]

    def has_token(self, name: str, token: str) -> bool:
        """httpguts.HeaderValuesContainsToken: a comma-separated element equal to `token`."""
        return any(element.strip(" \t\r\n").lower() == token
                   for value in self.headers.get(name, []) for element in value.split(","))


async def read_request_head(reader: ConnReader, after_post: bool) -> RequestHead:
    """The next request's head, or Refusal / SilentClose as Go's server would end it."""
    reader.set_limit(HEAD_READ_LIMIT)
    if after_post:  # Go tolerates a stray CRLF after a POST body, within the first 4 bytes
        peeked = await reader.peek(4)
        reader.discard(len(peeked) - len(peeked.lstrip(b"\r\n")))
    try:
        head = await _read_head(reader)
    except ReadStop as stop:
        if stop.reason == LIMIT or reader.limit_hit:
            raise Refusal.too_large() from None
        if stop.reason == TIMEOUT:
            raise SilentClose() from None
        raise Refusal.bad_request() from None  # io.ErrUnexpectedEOF
    except _Malformed:
        raise (Refusal.too_large() if reader.limit_hit else Refusal.bad_request()) from None
    except _UnsupportedTransferEncoding:
        raise (Refusal.too_large() if reader.limit_hit else Refusal.unsupported_transfer_encoding()) from None
    finally:
        reader.set_limit(None)
    _check_as_server(head)
    return head


async def _read_head(reader: ConnReader) -> RequestHead:
    try:
        line = await reader.read_line()
    except ReadStop as stop:
        if stop.reason == EOF:
            raise SilentClose() from None  # nothing at all: a plain io.EOF
        raise
    method, target, version = _parse_request_line(line)
    try:
        path, query = parse_request_target(target, method)
    except BadRequestUri:
        raise _Malformed() from None
    headers = await read_header_lines(reader)
    head = RequestHead(method, target.decode("latin-1"), path, query, version, headers)
    if len(headers.get("Host", [])) > 1:
        raise _Malformed()
    _read_transfer(head)
    return head


def _parse_request_line(line: bytes) -> tuple[str, bytes, tuple[int, int]]:
    method, space, rest = line.partition(b" ")
    target, space2, proto = rest.partition(b" ")
    if not space or not space2 or not _TOKEN.match(method):
        raise _Malformed()
    if proto == b"HTTP/1.1":
        return method.decode(), target, (1, 1)
    if proto == b"HTTP/1.0":
        return method.decode(), target, (1, 0)
    match = _VERSION.match(proto)
    if match is None:
        raise _Malformed()
    return method.decode(), target, (int(match.group(1)), int(match.group(2)))


async def read_header_lines(reader: ConnReader) -> dict[str, list[str]]:
    """textproto.ReadMIMEHeader: folded lines joined by a space, keys canonicalised."""
    if (await reader.peek(1)) in (b" ", b"\t"):
        line = await reader.read_line()
        raise MalformedHeader("malformed MIME header initial line: " + line.decode("latin-1"))
    headers: dict[str, list[str]] = {}
    while True:
        line = await reader.read_line()
        if not line:
            return headers
        if b":" not in line:
            raise MalformedHeader(f"malformed MIME header: missing colon: {_go_quote(line)}")
        parts = [line.strip(b" \t")]
        while (await reader.peek(1)) in (b" ", b"\t"):
            while (await reader.peek(1)) in (b" ", b"\t"):
                reader.discard(1)
            try:
                parts.append(b" " + (await reader.read_line()).strip(b" \t"))
            except ReadStop:
                parts.append(b" ")
                break
        name, _, value = b"".join(parts).partition(b":")
        key = _canonical_key(name)
        if key is None or not _HEADER_VALUE.match(value):
            raise MalformedHeader("malformed MIME header line: " + b"".join(parts).decode("latin-1"))
        headers.setdefault(key, []).append(value.lstrip(b" \t").decode("latin-1"))


def _go_quote(data: bytes) -> str:
    """Go's %q for ASCII-ish bytes: Go escapes, `\\xNN` for the rest."""
    escapes = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r",
               0x22: '\\"', 0x5C: "\\\\"}
    return '"' + "".join(escapes.get(b) or (chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}")
                         for b in data) + '"'


def _canonical_key(name: bytes) -> str | None:
    """Go's canonicalMIMEHeaderKey; a name with a space is kept as sent, other bad bytes refused."""
    without_spaces = name.replace(b" ", b"")
    if not name or (without_spaces and not _TOKEN.match(without_spaces)):
        return None
    text = name.decode("latin-1")
    if b" " in name:
        return text
    return "-".join(part[:1].upper() + part[1:].lower() for part in text.split("-"))


def _read_transfer(head: RequestHead) -> None:
    """Go's readTransfer for requests: chunked or a Content-Length, all copies agreeing."""
    chunked = False
    encodings = head.headers.pop("Transfer-Encoding", None)
    if encodings is not None and head.is_http11:
        if len(encodings) != 1 or encodings[0].encode("latin-1").lower() != b"chunked":
            raise _UnsupportedTransferEncoding()
        chunked = True
    lengths = [value.strip(" \t\r\n") for value in head.headers.get("Content-Length", [])]
    if any(length != lengths[0] for length in lengths[1:]):
        raise _Malformed()
    if lengths:
        if not _DIGITS.match(lengths[0]) or int(lengths[0]) >= 1 << 63:
            raise _Malformed()
        head.content_length = int(lengths[0])
    if chunked:
        head.headers.pop("Content-Length", None)
        head.content_length = None
        for value in head.headers.get("Trailer", []):
            if any(_canonical_key(element.strip(" \t\r\n").encode("latin-1")) in _BAD_TRAILER_KEYS
                   for element in value.split(",")):
                raise _Malformed()


def _is_h2_preface(head: RequestHead) -> bool:
    return head.method == "PRI" and head.target == "*" and head.version == (2, 0) and not head.headers


def _check_as_server(head: RequestHead) -> None:
    """conn.readRequest's checks after parsing: version, Host, header names."""
    if head.version[0] != 1 and not _is_h2_preface(head):
        raise Refusal.status(505, "HTTP Version Not Supported", "unsupported protocol version")
    hosts = head.headers.get("Host")
    if head.is_http11 and hosts is None and not _is_h2_preface(head) and head.method != "CONNECT":
        raise Refusal.bad_request("missing required Host header")
    if hosts and not _HOST_VALUE.match(hosts[0].encode("latin-1")):
        raise Refusal.bad_request("malformed Host header")
    if any(not _TOKEN.match(name.encode("latin-1")) for name in head.headers):
        raise Refusal.bad_request("invalid header name")
