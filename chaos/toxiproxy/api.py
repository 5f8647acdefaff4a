"""Toxiproxy 2.x's HTTP API: routes, request bodies, validation order and response shapes.

Matched routes get the request id, the browser guard and a time bound (503 after
`handler_timeout_s`), as Toxiproxy's middleware does; unmatched paths get plain 404/405.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from urllib.parse import quote

from prometheus_client import CONTENT_TYPE_LATEST

from .errors import (
    INVALID_STREAM,
    INVALID_TOXIC_TYPE,
    TOXIC_EXISTS,
    TOXIC_NOT_FOUND,
    ApiError,
    bad_request_body,
    error,
    missing_field,
)
from .gocompat import gojson
from .gocompat.gojson import BOOL, FLOAT32, STRING, Struct, TypeErrors
from .gocompat.httpbody import BodyReadError
from .gocompat.httpserver import Request, Response, clean_path
from .metrics import exposition
from .proxy_collection import ProxyCollection
from .stream import Direction
from .toxic_collection import new_wrapper
from .toxics import TOXIC_TYPES, Toxic

VERSION = "2.12.0"
HANDLER_TIMEOUT_S = 25.0
_TIMEOUT_BODY = b"<html><head><title>Timeout</title></head><body><h1>Timeout</h1></body></html>"

log = logging.getLogger("chaos.toxiproxy")

_LOGGER = Struct("Logger", "zerolog.Logger", {})
_PROXY_FIELDS = {"name": STRING, "listen": STRING, "upstream": STRING, "enabled": BOOL,
                 "Logger": _LOGGER}
PROXY_BODY = Struct("Proxy", "toxiproxy.Proxy", _PROXY_FIELDS)
POPULATE_ENTRY = Struct("", 'struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }',
                        _PROXY_FIELDS)
POPULATE_BODY_TYPE = "[]" + POPULATE_ENTRY.go_type
TOXIC_BODY = Struct("ToxicWrapper", "toxics.ToxicWrapper", {
    "attributes": Struct("NoopToxic", "toxics.NoopToxic", {}),
    "name": STRING, "type": STRING, "stream": STRING, "toxicity": FLOAT32})


def _attributes_struct(toxic_type: type[Toxic]) -> Struct:
    return Struct(toxic_type.go_name, f"toxics.{toxic_type.go_name}",
                  {name: toxic_type.int_kind for name in toxic_type.attribute_names()})


def _attributes_body(toxic_type: type[Toxic]) -> Struct:
    return Struct("", 'struct { Attributes interface {} "json:\\"attributes\\"" }',
                  {"attributes": _attributes_struct(toxic_type)})


def _toxic_update_body(toxic_type: type[Toxic]) -> Struct:
    return Struct("", 'struct { Attributes interface {} "json:\\"attributes\\""; '
                      'Toxicity float32 "json:\\"toxicity\\"" }',
                  {"attributes": _attributes_struct(toxic_type), "toxicity": FLOAT32})


def _decode(body: bytes, spec: Struct) -> dict:
    try:
        value = gojson.parse(body)
    except gojson.GoJsonError as failure:
        raise bad_request_body(str(failure)) from None
    errors = TypeErrors()
    result = gojson.decode_struct(value, spec, errors)
    if errors.first:
        raise bad_request_body(errors.first)
    return result or {}


def parse_populate_body(body: bytes) -> list[dict]:
    """The /populate entries, all validated before anything is created."""
    try:
        value = gojson.parse(body)
    except gojson.GoJsonError as failure:
        raise bad_request_body(str(failure)) from None
    errors = TypeErrors()
    entries = gojson.decode_list(value, POPULATE_ENTRY, POPULATE_BODY_TYPE, errors)
    if errors.first:
        raise bad_request_body(errors.first)
    for index, entry in enumerate(entries or [], start=1):
        if not entry.get("name"):
            raise missing_field(f"name at proxy {index}")
        if not entry.get("upstream"):
            raise missing_field(f"upstream at proxy {index}")
    return entries or []


async def _read_body(request: Request) -> bytes:
    """The body as Go's json.Decoder sees it: a read error counts only if it cut a value short."""
    try:
        return await request.body()
    except BodyReadError as failure:
        try:
            gojson.parse(failure.received)
        except gojson.GoJsonError as syntax:
            if str(syntax) in ("EOF", "unexpected EOF"):
                raise bad_request_body(failure.reason) from None
        return failure.received


def _error_response(failure: ApiError) -> Response:
    return Response.text(failure.status, gojson.marshal({"error": failure.message, "status": failure.status}))


def _ok(status: int, body: str) -> Response:
    return Response.json(status, body)


class _RequestIds:
    """xid-style ids: 12 bytes (time, machine, pid, counter) in 20 base32hex characters."""

    _ALPHABET = "0123456789abcdefghijklmnopqrstuv"

    def __init__(self) -> None:
        self._machine = os.urandom(3)
        self._counter = int.from_bytes(os.urandom(3), "big")
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._counter = (self._counter + 1) & 0xFFFFFF
            counter = self._counter
        raw = (int(time.time()).to_bytes(4, "big") + self._machine
               + (os.getpid() & 0xFFFF).to_bytes(2, "big") + counter.to_bytes(3, "big"))
        number = int.from_bytes(raw, "big") << 4
        return "".join(self._ALPHABET[(number >> (5 * i)) & 31] for i in range(19, -1, -1))


class ToxiproxyApi:
    def __init__(self, collection: ProxyCollection, metrics_registry=None,
                 handler_timeout_s: float = HANDLER_TIMEOUT_S) -> None:
        self.collection = collection
        self.handler_timeout_s = handler_timeout_s
        self._metrics_registry = metrics_registry
        self._ids = _RequestIds()
        self._lock = asyncio.Lock()
        self._routes: list[tuple[re.Pattern, dict]] = [
            (re.compile(r"/proxies\Z"), {"GET": self.proxy_index, "POST": self.proxy_create}),
            (re.compile(r"/populate\Z"), {"POST": self.populate}),
            (re.compile(r"/proxies/([^/]+)\Z"), {
                "GET": self.proxy_show, "POST": self.proxy_update, "PATCH": self.proxy_update,
                "DELETE": self.proxy_delete}),
            (re.compile(r"/proxies/([^/]+)/toxics\Z"), {"GET": self.toxic_index, "POST": self.toxic_create}),
            (re.compile(r"/proxies/([^/]+)/toxics/([^/]+)\Z"), {
                "GET": self.toxic_show, "POST": self.toxic_update, "PATCH": self.toxic_update,
                "DELETE": self.toxic_delete}),
            (re.compile(r"/reset\Z"), {"POST": self.reset}),
            (re.compile(r"/version\Z"), {"GET": self.version}),
        ]
        if metrics_registry is not None:
            self._routes.append((re.compile(r"/metrics\Z"), {"*": self.metrics}))

    # --- dispatch -------------------------------------------------------------------

    async def __call__(self, request: Request) -> Response:
        cleaned = clean_path(request.path)
        if cleaned != request.path:
            location = quote(cleaned) + (f"?{request.query}" if request.query else "")
            return Response(301, b"", [("Location", location)])
        wrong_method = False
        for pattern, methods in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            handler = methods.get(request.method) or methods.get("*")
            if handler is None:
                wrong_method = True
                continue
            response = await self._run_matched(request, handler, match.groups())
            response.headers.append(("X-Toxiproxy-Request-Id", self._ids.next()))
            return response
        if wrong_method:
            return Response(405)
        return Response.text(404, "404 page not found")

    async def _run_matched(self, request: Request, handler, args: tuple[str, ...]) -> Response:
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            return Response.text(403, "User agent not allowed")
        try:
            return await asyncio.wait_for(handler(request, *args), self.handler_timeout_s)
        except ApiError as failure:
            return _error_response(failure)
        except TimeoutError:
            request.close_after = not request.body_complete
            return Response(503, _TIMEOUT_BODY, [("Content-Type", "text/html; charset=utf-8")])
        except Exception as failure:  # a defect must not kill the API; report it as Go would
            log.exception("%s %s failed", request.method, request.path)
            return _error_response(ApiError(str(failure), 500))

    # --- proxies ----------------------------------------------------------------------

    async def proxy_index(self, request: Request) -> Response:
        body = ",".join(f"{gojson.marshal(p.name)}:{p.to_json()}" for p in self.collection.all())
        return _ok(200, "{" + body + "}")

    async def proxy_create(self, request: Request) -> Response:
        fields = _decode(await _read_body(request), PROXY_BODY)
        if not fields.get("name"):
            raise missing_field("name")
        if not fields.get("upstream"):
            raise missing_field("upstream")
        async with self._lock:
            proxy = self.collection.new_proxy(fields["name"], fields.get("listen", ""), fields["upstream"])
            await self.collection.add(proxy, start=fields.get("enabled", True))
        return _ok(201, proxy.to_json())

    async def proxy_show(self, request: Request, name: str) -> Response:
        return _ok(200, self.collection.get(name).to_json())

    async def proxy_update(self, request: Request, name: str) -> Response:
        proxy = self.collection.get(name)
        fields = _decode(await _read_body(request), PROXY_BODY)
        async with self._lock:
            await proxy.update(fields.get("listen", proxy.listen), fields.get("upstream", proxy.upstream),
                               fields.get("enabled", proxy.enabled))
        return _ok(200, proxy.to_json())

    async def proxy_delete(self, request: Request, name: str) -> Response:
        async with self._lock:
            self.collection.remove(name)
        return Response(204)

    async def populate(self, request: Request) -> Response:
        created = []
        try:
            entries = parse_populate_body(await _read_body(request))
            async with self._lock:
                for entry in entries:
                    proxy = self.collection.new_proxy(entry["name"], entry.get("listen", ""), entry["upstream"])
                    created.append(await self.collection.add_or_replace(proxy, entry.get("enabled", True)))
        except ApiError as failure:
            listed = "[" + ",".join(p.to_json() for p in created) + "]" if created else "null"
            head = gojson.marshal({"error": failure.message, "status": failure.status})[:-1]
            return _ok(failure.status, f'{head},"proxies":{listed}}}')
        listed = "[" + ",".join(p.to_json() for p in created) + "]" if created else "null"
        return _ok(201, f'{{"proxies":{listed}}}')

    async def reset(self, request: Request) -> Response:
        async with self._lock:
            for proxy in self.collection.all():
                await proxy.start()
                proxy.toxics.clear()
        return Response(204)

    async def version(self, request: Request) -> Response:
        return Response.json(200, f'{{"version": "{VERSION}"}}\n', "application/json;charset=utf-8")

    async def metrics(self, request: Request) -> Response:
        return Response(200, exposition(self._metrics_registry), [("Content-Type", CONTENT_TYPE_LATEST)])

    # --- toxics -----------------------------------------------------------------------

    async def toxic_index(self, request: Request, proxy_name: str) -> Response:
        toxics = self.collection.get(proxy_name).toxics.all()
        return _ok(200, "[" + ",".join(w.to_json() for w in toxics) + "]")

    async def toxic_create(self, request: Request, proxy_name: str) -> Response:
        proxy = self.collection.get(proxy_name)
        body = await _read_body(request)
        fields = _decode(body, TOXIC_BODY)
        stream = fields.get("stream", "downstream")
        direction = Direction.parse(stream)
        if direction is None:
            raise error(INVALID_STREAM)
        type_name = fields.get("type", "")
        name = fields.get("name") or f"{type_name}_{stream}"
        toxic_type = TOXIC_TYPES.get(type_name)
        if toxic_type is None:
            raise error(INVALID_TOXIC_TYPE)
        if proxy.toxics.find(name) is not None:
            raise error(TOXIC_EXISTS)
        attributes = _decode(body, _attributes_body(toxic_type)).get("attributes", {})
        wrapper = new_wrapper(name, type_name, stream, direction, fields.get("toxicity", 1.0),
                              toxic_type(**attributes))
        proxy.toxics.add(wrapper)
        return _ok(200, wrapper.to_json())

    def _find_toxic(self, proxy_name: str, toxic_name: str):
        proxy = self.collection.get(proxy_name)
        wrapper = proxy.toxics.find(toxic_name)
        if wrapper is None:
            raise error(TOXIC_NOT_FOUND)
        return proxy, wrapper

    async def toxic_show(self, request: Request, proxy_name: str, toxic_name: str) -> Response:
        return _ok(200, self._find_toxic(proxy_name, toxic_name)[1].to_json())

    async def toxic_update(self, request: Request, proxy_name: str, toxic_name: str) -> Response:
        proxy, wrapper = self._find_toxic(proxy_name, toxic_name)
        toxic_type = type(wrapper.toxic)
        fields = _decode(await _read_body(request), _toxic_update_body(toxic_type))
        attributes = {**wrapper.toxic.attributes(), **fields.get("attributes", {})}
        proxy.toxics.update(wrapper, toxic_type(**attributes), fields.get("toxicity", wrapper.toxicity))
        return _ok(200, wrapper.to_json())

    async def toxic_delete(self, request: Request, proxy_name: str, toxic_name: str) -> Response:
        proxy, wrapper = self._find_toxic(proxy_name, toxic_name)
        proxy.toxics.remove(wrapper)
        return Response(204)
