"""Go `encoding/json` behaviour for request bodies and responses.

Toxiproxy clients see Go's decoder: only the first JSON value is read, keys match
case-insensitively, `null` keeps a default, and errors carry Go's exact texts. Bodies are
first checked by a scanner that reports Go's syntax messages, then converted field by field
with Go's type-error messages.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from decimal import Decimal


class GoJsonError(ValueError):
    """A decoding error whose text is what Go's decoder would have said."""


class _Number(str):
    """A JSON number kept as its literal text (Go quotes the literal in errors)."""


class _Object(list):
    """A JSON object as its (key, value) pairs, in order, duplicates kept."""


_WHITESPACE = b" \t\r\n"
MAX_DEPTH = 500
"""Go allows 10000 levels; Python's recursion limit allows fewer, and no client nests this deep."""
_HEX = b"0123456789abcdefABCDEF"


def _quote_char(c: int) -> str:
    """Go's quoteChar: the byte as a rune, quoted like strconv.Quote but with single quotes."""
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    escapes = {0x07: "\\a", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t",
               0x0B: "\\v", 0x5C: "\\\\"}
    if c in escapes:
        return f"'{escapes[c]}'"
    ch = chr(c)
    if ch.isprintable():
        return f"'{ch}'"
    return f"'\\x{c:02x}'" if c < 0x80 else f"'\\u{c:04x}'"


class _Scanner:
    """Finds the end of the first JSON value, failing with Go's scanner messages."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.depth = 0

    def fail(self, context: str) -> GoJsonError:
        if self.pos >= len(self.data):
            return GoJsonError("unexpected EOF")
        return GoJsonError(f"invalid character {_quote_char(self.data[self.pos])} {context}")

    def peek(self) -> int:
        if self.pos >= len(self.data):
            raise GoJsonError("unexpected EOF")
        return self.data[self.pos]

    def skip_whitespace(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in _WHITESPACE:
            self.pos += 1

    def value(self) -> None:
        c = self.peek()
        if c in b"{[":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise GoJsonError("exceeded max depth")
            self.object() if c == 0x7B else self.array()
            self.depth -= 1
        elif c == 0x22:
            self.string()
        elif c == 0x2D or 0x30 <= c <= 0x39:
            self.number()
        elif c in b"tfn":
            self.literal({0x74: b"true", 0x66: b"false", 0x6E: b"null"}[c])
        else:
            raise self.fail("looking for beginning of value")

    def object(self) -> None:
        self.pos += 1
        self.skip_whitespace()
        if self.peek() == 0x7D:
            self.pos += 1
            return
        while True:
            if self.peek() != 0x22:
                raise self.fail("looking for beginning of object key string")
            self.string()
            self.skip_whitespace()
            if self.peek() != 0x3A:
                raise self.fail("after object key")
            self.pos += 1
            self.skip_whitespace()
            self.value()
            self.skip_whitespace()
            c = self.peek()
            if c == 0x7D:
                self.pos += 1
                return
            if c != 0x2C:
                raise self.fail("after object key:value pair")
            self.pos += 1
            self.skip_whitespace()

    def array(self) -> None:
        self.pos += 1
        self.skip_whitespace()
        if self.peek() == 0x5D:
            self.pos += 1
            return
        while True:
            self.value()
            self.skip_whitespace()
            c = self.peek()
            if c == 0x5D:
                self.pos += 1
                return
            if c != 0x2C:
                raise self.fail("after array element")
            self.pos += 1
            self.skip_whitespace()

    def string(self) -> None:
        self.pos += 1
        while True:
            c = self.peek()
            if c == 0x22:
                self.pos += 1
                return
            if c == 0x5C:
                self.pos += 1
                c = self.peek()
                if c == 0x75:
                    self.pos += 1
                    for _ in range(4):
                        if self.peek() not in _HEX:
                            raise self.fail("in \\u hexadecimal character escape")
                        self.pos += 1
                    continue
                if c not in b'"\\/bfnrt':
                    raise self.fail("in string escape code")
            elif c < 0x20:
                raise self.fail("in string literal")
            self.pos += 1

    def digits(self, context: str) -> None:
        if not 0x30 <= self.peek() <= 0x39:
            raise self.fail(context)
        while self.pos < len(self.data) and 0x30 <= self.data[self.pos] <= 0x39:
            self.pos += 1

    def number(self) -> None:
        if self.data[self.pos] == 0x2D:
            self.pos += 1
        if self.peek() == 0x30:
            self.pos += 1
        else:
            self.digits("in numeric literal")
        if self.pos < len(self.data) and self.data[self.pos] == 0x2E:
            self.pos += 1
            self.digits("after decimal point in numeric literal")
        if self.pos < len(self.data) and self.data[self.pos] in b"eE":
            self.pos += 1
            if self.peek() in b"+-":
                self.pos += 1
            self.digits("in exponent of numeric literal")

    def literal(self, word: bytes) -> None:
        self.pos += 1
        for expected in word[1:]:
            if self.peek() != expected:
                raise self.fail(f"in literal {word.decode()} (expecting {_quote_char(expected)})")
            self.pos += 1


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean_text(value: str) -> str:
    """Go turns unpaired surrogate escapes into U+FFFD."""
    return _SURROGATE.sub("\ufffd", value)


def parse(data: bytes):
    """Decode the first JSON value of `data` like Go's json.Decoder (trailing data ignored).

    Objects come back as `_Object` pair lists and numbers as `_Number` literals so that the
    field decoders can reproduce Go's rules and messages.
    """
    scanner = _Scanner(data)
    scanner.skip_whitespace()
    if scanner.pos >= len(data):
        raise GoJsonError("EOF")
    start = scanner.pos
    scanner.value()
    text = data[start:scanner.pos].decode("utf-8", "replace")
    return json.loads(text, parse_int=_Number, parse_float=_Number, object_pairs_hook=_Object)


# --- typed decoding -----------------------------------------------------------------

INT64 = "int64"
INT = "int"
STRING = "string"
BOOL = "bool"
FLOAT32 = "float32"

_INT_LITERAL = re.compile(r"-?\d+\Z")
_INT64_RANGE = (-(2**63), 2**63 - 1)


def _kind(value) -> str:
    if isinstance(value, _Object):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, _Number):
        return "number"
    if isinstance(value, str):
        return "string"
    return "bool"


def to_float32(value: float) -> float:
    """Round a Python float to the nearest float32, as Go stores toxicity."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


@dataclass(frozen=True)
class Struct:
    """A Go struct as the decoder sees it: its name in errors and its JSON fields.

    `fields` maps each JSON key to a scalar kind (INT64, STRING, ...) or a nested Struct.
    `go_type` is the type's full name used in "Go value of type ..." errors.
    """

    name: str
    go_type: str
    fields: dict


class TypeErrors:
    """Collects the first type mismatch; Go keeps decoding and reports only the first."""

    def __init__(self) -> None:
        self.first: str | None = None

    def add(self, value_text: str, struct_name: str, path: list[str], type_name: str) -> None:
        if self.first is None:
            field = ".".join(path)
            self.first = (f"json: cannot unmarshal {value_text} into Go struct field "
                          f"{struct_name}.{field} of type {type_name}")


def _scalar(value, kind: str, errors: TypeErrors, struct_name: str, path: list[str]):
    """Convert one JSON value to a Go scalar kind; None means "leave the default"."""
    if kind in (INT64, INT):
        if isinstance(value, _Number):
            if _INT_LITERAL.match(value) and _INT64_RANGE[0] <= int(value) <= _INT64_RANGE[1]:
                return int(value)
            errors.add(f"number {value}", struct_name, path, kind)
            return None
    elif kind == FLOAT32:
        if isinstance(value, _Number):
            try:
                number = to_float32(float(value))
            except OverflowError:
                number = float("inf")
            if abs(number) != float("inf"):
                return number
            errors.add(f"number {value}", struct_name, path, kind)
            return None
    elif kind == STRING:
        if isinstance(value, str) and not isinstance(value, _Number):
            return _clean_text(value)
    elif kind == BOOL:
        if isinstance(value, bool):
            return value
    errors.add(_kind(value), struct_name, path, kind)
    return None


def _match_field(key: str, fields: dict) -> str | None:
    if key in fields:
        return key
    folded = key.lower()
    for name in fields:
        if name.lower() == folded:
            return name
    return None


def decode_struct(value, spec: Struct, errors: TypeErrors, path: list[str] | None = None,
                  holder: str | None = None) -> dict | None:
    """Decode `value` into `spec`, returning the fields that were present and not null.

    At the top level (`path` None) a non-object is a "Go value of type" error; nested, it
    is reported against the enclosing struct `holder` at `path`.
    """
    if value is None:
        return None
    if not isinstance(value, _Object):
        if path is None:
            if errors.first is None:
                errors.first = f"json: cannot unmarshal {_kind(value)} into Go value of type {spec.go_type}"
        else:
            errors.add(_kind(value), holder or "", path, spec.go_type)
        return None
    result: dict = {}
    for key, item in value:
        name = _match_field(_clean_text(key), spec.fields)
        if name is None or item is None:
            continue
        field_path = (path or []) + [name]
        kind = spec.fields[name]
        if isinstance(kind, Struct):
            decoded = decode_struct(item, kind, errors, field_path, spec.name)
            if decoded is not None:
                result.setdefault(name, {}).update(decoded)
        else:
            converted = _scalar(item, kind, errors, spec.name, field_path)
            if converted is not None:
                result[name] = converted
    return result


def decode_list(value, element: Struct, go_type: str, errors: TypeErrors) -> list[dict] | None:
    """Decode a JSON array of `element` structs (null gives None)."""
    if value is None:
        return None
    if not isinstance(value, list) or isinstance(value, _Object):
        errors.first = errors.first or f"json: cannot unmarshal {_kind(value)} into Go value of type {go_type}"
        return None
    items = []
    for item in value:
        if item is not None and not isinstance(item, _Object):
            errors.first = errors.first or (
                f"json: cannot unmarshal {_kind(item)} into Go value of type {element.go_type}")
            items.append({})
            continue
        items.append(decode_struct(item, element, errors, [], element.name) or {})
    return items


# --- encoding -------------------------------------------------------------------------

_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML_CHARS = re.compile("[<>&\u2028\u2029]")


def marshal(value) -> str:
    """Compact JSON the way Go's json.Marshal writes it (HTML characters escaped)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _HTML_CHARS.sub(lambda m: _HTML_ESCAPES[m.group()], text)


def format_float32(value: float) -> str:
    """Go's JSON text for a float32: shortest round-trip digits, exponent only when tiny or huge."""
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    for precision in range(1, 10):
        digits = f"{value:.{precision}g}"
        if to_float32(float(digits)) == value:
            break
    number = Decimal(digits)
    if 1e-6 <= abs(value) < 1e21:
        return format(number, "f")
    sign, mantissa_digits, exponent = number.normalize().as_tuple()
    text = "".join(map(str, mantissa_digits))
    exponent += len(text) - 1
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    exp_text = f"{abs(exponent):02d}" if exponent >= 0 else str(abs(exponent))
    return f"{'-' if sign else ''}{mantissa}e{'+' if exponent >= 0 else '-'}{exp_text}"
