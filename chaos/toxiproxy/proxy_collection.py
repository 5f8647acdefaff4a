"""The named proxies of one server, as Toxiproxy's API and /populate manage them."""

from __future__ import annotations

from .errors import PROXY_EXISTS, PROXY_NOT_FOUND, error
from .metrics import ProxyMetrics
from .proxy import Proxy


class ProxyCollection:
    def __init__(self, metrics: ProxyMetrics) -> None:
        self.metrics = metrics
        self._proxies: dict[str, Proxy] = {}

    def new_proxy(self, name: str, listen: str, upstream: str) -> Proxy:
        return Proxy(name, listen, upstream, self.metrics)

    def all(self) -> list[Proxy]:
        return [self._proxies[name] for name in sorted(self._proxies)]

    def get(self, name: str) -> Proxy:
        proxy = self._proxies.get(name)
        if proxy is None:
            raise error(PROXY_NOT_FOUND)
        return proxy

    async def add(self, proxy: Proxy, start: bool) -> None:
        if proxy.name in self._proxies:
            raise error(PROXY_EXISTS)
        if start:
            await proxy.start()
        self._proxies[proxy.name] = proxy

    async def add_or_replace(self, proxy: Proxy, start: bool) -> Proxy:
        """Keep an existing proxy with the same (resolved) listen and upstream, toxics and
        all; otherwise stop it and put `proxy` in its place. Returns the proxy in effect."""
        existing = self._proxies.get(proxy.name)
        if existing is not None:
            if not await existing.differs(proxy.listen, proxy.upstream):
                return existing
            existing.stop()
        if start:
            await proxy.start()
        self._proxies[proxy.name] = proxy
        return proxy

    def remove(self, name: str) -> None:
        self.get(name).stop()
        del self._proxies[name]

    def clear(self) -> None:
        for proxy in list(self._proxies.values()):
            proxy.stop()
        self._proxies.clear()
