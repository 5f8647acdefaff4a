"""Fault control: Toxiproxy proxies and toxics (through the `toxiproxy-python` client) and the FAL
emulator's behaviours (through its admin API).

The client is synchronous and keeps the server address in class attributes, so a
``FaultController`` points it at one server; the runner calls these methods through
``asyncio.to_thread``. The client swallows 5xx answers (it only raises on 400/404/409), so every
call here checks the status itself and raises ``FaultError`` naming the operation.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import Gauge
from prometheus_client.parser import text_string_to_metric_families
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from chaos.stack.keepalive import pool_limits

PROXY_NAMES = ("fal", "postgres", "storage")
# Faults applied by this process right now, for the dashboards' fault-window annotations; served by
# `genchaos run --metrics-port` (and the Locust master) on the process's default Prometheus registry.
FAULT_ACTIVE = Gauge("genchaos_fault_active", "Faults the harness applies right now", ["proxy", "fault"])
ADMIN_TIMEOUT_S = 10.0


class FaultError(RuntimeError):
    """A fault could not be applied or removed; the message names the proxy or behaviour."""


def _describe(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else b""
    return raw.decode(errors="replace").strip() if isinstance(raw, bytes) else str(raw)


def _checked(what: str, response) -> Any:
    """The response of a client call, or FaultError when the server answered 5xx."""
    if response.status_code >= 500:
        raise FaultError(f"{what}: Toxiproxy answered {response.status_code}: {response.text.strip()}")
    return response


class FaultController:
    """Proxies, toxics and proxy outages on one Toxiproxy server."""

    def __init__(self, toxiproxy_url: str) -> None:
        parts = urlsplit(toxiproxy_url if "//" in toxiproxy_url else f"http://{toxiproxy_url}")
        if not parts.hostname or not parts.port:
            raise FaultError(f"Toxiproxy URL {toxiproxy_url!r} needs a host and a port")
        self.url = f"http://{parts.hostname}:{parts.port}"
        self._server = Toxiproxy()
        self._server.update_api_consumer(parts.hostname, parts.port)

    def _proxy(self, name: str):
        proxy = self._server.get_proxy(name)
        if proxy is None:
            raise FaultError(f"proxy {name!r} does not exist on {self.url}")
        return proxy

    def ensure_proxies(self, upstreams: dict[str, str]) -> dict[str, str]:
        """Create (or keep, when the upstream matches) one enabled proxy per name; name -> listen."""
        listening: dict[str, str] = {}
        existing = self._server.proxies()
        for name, upstream in upstreams.items():
            proxy = existing.get(name)
            if proxy is not None and proxy.upstream != upstream:
                _checked(f"delete proxy {name}", APIConsumer.delete(f"/proxies/{name}"))
                proxy = None
            if proxy is None:
                try:
                    proxy = self._server.create(upstream=upstream, name=name, listen="127.0.0.1:0")
                except ProxyExists as exc:
                    raise FaultError(f"create proxy {name}: {_describe(exc)}") from exc
            elif not proxy.enabled:
                self.enable(name)
            listening[name] = proxy.listen
        return listening

    def add_toxic(self, proxy: str, type: str, *, stream: str = "downstream", toxicity: float = 1.0,
                  attributes: dict[str, int] | None = None, name: str | None = None) -> str:
        """Add a toxic and return its name (``<type>_<stream>`` unless given)."""
        toxic_name = name or f"{type}_{stream}"
        try:
            self._proxy(proxy).add_toxic(type=type, stream=stream, toxicity=toxicity,
                                         attributes=dict(attributes or {}), name=toxic_name)
        except (InvalidToxic, NotFound, ProxyExists) as exc:
            raise FaultError(f"add {type} toxic to proxy {proxy}: {_describe(exc)}") from exc
        return toxic_name

    def remove_toxic(self, proxy: str, name: str, *, missing_ok: bool = False) -> None:
        try:
            self._proxy(proxy).destroy_toxic(name)
        except NotFound as exc:
            if not missing_ok:
                raise FaultError(f"remove toxic {name} from proxy {proxy}: {_describe(exc)}") from exc

    def toxics(self, proxy: str) -> dict[str, dict[str, Any]]:
        """The proxy's toxics, name -> {type, stream, toxicity, attributes}."""
        return {name: {"type": t.type, "stream": t.stream, "toxicity": t.toxicity, "attributes": t.attributes}
                for name, t in self._proxy(proxy).toxics().items()}

    def disable(self, proxy: str) -> None:
        """Take a proxy down: new connections are refused and open ones are closed."""
        self._proxy(proxy).disable()

    def enable(self, proxy: str) -> None:
        self._proxy(proxy).enable()

    def is_enabled(self, proxy: str) -> bool:
        return bool(self._proxy(proxy).enabled)

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic (the rollback of any Toxiproxy fault)."""
        _checked("reset", APIConsumer.post("/reset"))

    def proxy_bytes(self, proxy: str) -> float | None:
        """Bytes the proxy has carried in both directions, from Toxiproxy's ``/metrics`` (served when
        the server runs with proxy metrics on); None when the server does not serve them."""
        try:
            response = httpx.get(f"{self.url}/metrics", timeout=ADMIN_TIMEOUT_S)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        total, served = 0.0, False
        for family in text_string_to_metric_families(response.text):
            if family.name not in ("toxiproxy_proxy_received_bytes", "toxiproxy_proxy_sent_bytes"):
                continue
            served = True
            total += sum(s.value for s in family.samples if s.labels.get("proxy") == proxy
                         and s.name.endswith("_total"))
        return total if served else None

    @contextmanager
    def toxic(self, proxy: str, type: str, **options) -> Iterator[str]:
        """A toxic present for the duration of the ``with`` block, removed even on error."""
        name = self.add_toxic(proxy, type, **options)
        try:
            yield name
        finally:
            self.remove_toxic(proxy, name, missing_ok=True)  # a reset (rollback) may have removed it already

    @contextmanager
    def down(self, proxy: str) -> Iterator[None]:
        """A proxy disabled for the duration of the ``with`` block, enabled again even on error."""
        self.disable(proxy)
        try:
            yield
        finally:
            self.enable(proxy)


class EmulatorControl:
    """An emulator's admin API, common to both emulators: health, request log and reset."""

    def __init__(self, admin_url: str, ca_bundle: str | None = None) -> None:
        self.admin_url = admin_url.rstrip("/")
        verify = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        # A call after a pause (a fault applied seconds into a scenario) must not race the server closing
        # its idle connection.
        self._client = httpx.Client(base_url=self.admin_url, verify=verify, timeout=ADMIN_TIMEOUT_S,
                                    limits=pool_limits())

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise FaultError(f"emulator {self.admin_url} {method} {path}: {exc}") from exc
        if response.status_code >= 400:
            raise FaultError(f"emulator {self.admin_url} {method} {path}: {response.status_code} {response.text.strip()}")
        return response

    def reset(self) -> None:
        """Clear the request log (and, for FAL, restore the default behaviour)."""
        self._call("POST", "/_emulator/reset")

    def requests(self) -> list[dict[str, Any]]:
        """Every protocol request the emulator received, oldest first."""
        return self._call("GET", "/_emulator/requests").json()


class FalEmulatorControl(EmulatorControl):
    """The FAL emulator's behaviours: app errors, 429s, ingress 5xx, latency and stuck jobs."""

    def behaviour(self) -> dict[str, Any]:
        return self._call("GET", "/_emulator/behaviour").json()

    def set_behaviour(self, **fields: Any) -> dict[str, Any]:
        """Change the given behaviour fields (others keep their value); returns the new behaviour."""
        return self._call("PUT", "/_emulator/behaviour", json=fields).json()

    @contextmanager
    def behaving(self, **fields: Any) -> Iterator[None]:
        """Apply behaviour fields for the ``with`` block, then put back the values they replaced."""
        previous = self.behaviour()
        self.set_behaviour(**fields)
        try:
            yield
        finally:
            self.set_behaviour(**{key: previous[key] for key in fields if key in previous})
