"""The whole toxiproxy-python client surface against our server."""

from __future__ import annotations

import pytest
from toxiproxy import Proxy, Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy_support import free_port


@pytest.fixture
def client(toxiproxy, api):
    server = Toxiproxy()
    server.update_api_consumer("127.0.0.1", toxiproxy.server.port)
    yield server
    APIConsumer.host, APIConsumer.port = "127.0.0.1", 8474


def test_running_and_version(client):
    assert client.running() is True
    assert client.version() == b'{"version": "2.12.0"}\n'


def test_create_list_get_destroy(client):
    proxy = client.create(upstream="localhost:3306", name="mysql")
    assert isinstance(proxy, Proxy) and proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:")
    assert list(client.proxies()) == ["mysql"]
    assert client.get_proxy("mysql").upstream == "localhost:3306"
    assert client.get_proxy("nope") is None
    with pytest.raises(ProxyExists):
        client.create(upstream="localhost:3306", name="mysql")
    assert client.destroy(proxy) is True
    assert client.destroy("not a proxy") is False
    assert client.proxies() == {}


def test_create_disabled_echoes_listen_and_enable_disable_keep_port(client):
    port = free_port()
    proxy = client.create(upstream="localhost:1", name="off", listen=f"127.0.0.1:{port}", enabled=False)
    assert proxy.listen == f"127.0.0.1:{port}" and proxy.enabled is False
    proxy.enable()
    listen = client.get_proxy("off").listen
    proxy.disable()
    assert client.get_proxy("off").enabled is False
    proxy.enable()
    assert client.get_proxy("off").listen == listen
    with proxy.down():
        assert client.get_proxy("off").enabled is False
    assert client.get_proxy("off").enabled is True


def test_toxics_surface(client):
    proxy = client.create(upstream="localhost:1", name="p")
    proxy.disable()
    proxy.add_toxic(type="latency", attributes={"latency": 100})
    proxy.add_toxic(type="bandwidth", stream="upstream", name="slow", toxicity=0.5, attributes={"rate": 10})
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "slow"}
    assert toxics["slow"].stream == "upstream" and toxics["slow"].toxicity == 0.5
    assert proxy.get_toxic("latency_downstream").attributes == {"latency": 100, "jitter": 0}
    assert proxy.get_toxic("nope") is None
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", stream="sideways")
    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency")
    assert proxy.destroy_toxic("slow") is True
    with pytest.raises(NotFound):
        proxy.destroy_toxic("slow")
    assert client.reset() is True
    assert client.get_proxy("p").enabled is True and proxy.toxics() == {}


def test_populate_and_destroy_all(client):
    created = client.populate([{"name": "a", "upstream": "localhost:1", "listen": "127.0.0.1:0"},
                               {"name": "b", "upstream": "localhost:2", "listen": "127.0.0.1:0"}])
    assert sorted(p.name for p in created) == ["a", "b"]
    client.destroy_all()
    assert client.proxies() == {}


def test_unknown_path_raises_not_found(client):
    with pytest.raises(NotFound) as raised:
        APIConsumer.get("/nowhere")
    assert raised.value.args[0] == b"404 page not found\n"
