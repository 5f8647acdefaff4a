"""HTTP API conformance with Toxiproxy 2.x, modelled on Toxiproxy's own api_test.go."""

from __future__ import annotations

import http.client
import re
import socket
import time

import httpx
import pytest
from toxiproxy_support import ServerThread, add_toxic, connect, create_proxy, free_port

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == TEXT
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == f'{{"error":"{message}","status":{status}}}\n'


# --- middleware and routing ---------------------------------------------------------------

def test_request_id_on_matched_routes_including_errors(api):
    ids = {api.get("/proxies").headers["x-toxiproxy-request-id"],
           api.get("/proxies/missing").headers["x-toxiproxy-request-id"]}
    assert len(ids) == 2
    assert all(re.fullmatch(r"[0-9a-v]{20}", i) for i in ids)
    assert "x-toxiproxy-request-id" not in api.get("/nowhere").headers


def test_browser_gets_403_on_matched_routes_only(api):
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    response = api.get("/proxies", headers=browser)
    assert response.status_code == 403
    assert response.text == "User agent not allowed\n"
    assert response.headers["content-type"] == TEXT
    assert "x-toxiproxy-request-id" in response.headers
    assert api.post("/proxies", headers=browser, json={"name": "x", "upstream": "a:1"}).status_code == 403
    assert api.get("/proxies").json() == {}
    assert api.get("/nowhere", headers=browser).status_code == 404


@pytest.mark.parametrize("agent", ["curl/8.0", "Wget/1.2", "python-requests/2.31", "mozilla/5.0", ""])
def test_non_browser_gets_200(api, agent):
    assert api.get("/proxies", headers={"User-Agent": agent}).status_code == 200


def test_unknown_path_is_404_text(api):
    for path in ("/nowhere", "/proxies/", "/proxies/a/b"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.text == "404 page not found\n"
        assert response.headers["content-type"] == TEXT


def test_wrong_method_is_405_with_empty_body(api):
    for method, path in [("GET", "/reset"), ("PUT", "/proxies"), ("DELETE", "/version"),
                         ("GET", "/populate"), ("PUT", "/proxies/a/toxics/b"), ("HEAD", "/proxies")]:
        response = api.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.content == b""
        assert "x-toxiproxy-request-id" not in response.headers


def test_non_canonical_path_redirects(toxiproxy):
    for path, location in [("//proxies", "/proxies"), ("/proxies/../version", "/version"),
                           ("/./reset", "/reset"), ("/proxies//x/?a=1", "/proxies/x/?a=1")]:
        connection = http.client.HTTPConnection("127.0.0.1", toxiproxy.server.port, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            assert response.status == 301, path
            assert response.getheader("Location") == location
            assert response.read() == b""
        finally:
            connection.close()


def test_metrics_route_absent_without_flag(api):
    assert api.get("/metrics").status_code == 404


def test_version_endpoint_returns_version(api):
    response = api.get("/version")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    assert response.content == b'{"version": "2.12.0"}\n'


def test_index_with_no_proxies(api):
    response = api.get("/proxies")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert response.content == b"{}"


# --- proxies ------------------------------------------------------------------------------

def test_create_proxy_blank_name_and_upstream(api):
    assert_error(api.post("/proxies", json={"upstream": "localhost:1"}), 400, "missing required field: name")
    assert_error(api.post("/proxies", json={"name": "a"}), 400, "missing required field: upstream")
    assert_error(api.post("/proxies", content=b""), 400, "bad request body: EOF")
    assert_error(api.post("/proxies", content=b"[]"), 400,
                 "bad request body: json: cannot unmarshal array into Go value of type toxiproxy.Proxy")
    assert_error(api.post("/proxies", content=b'{"name":5}'), 400,
                 "bad request body: json: cannot unmarshal number into Go struct field Proxy.name of type string")
    assert_error(api.post("/proxies", content=b'{"name":'), 400, "bad request body: unexpected EOF")
    assert_error(api.post("/proxies", content=b'{x}'), 400,
                 "bad request body: invalid character 'x' looking for beginning of object key string")


def test_create_and_get_proxy_exact_body(api):
    response = api.post("/proxies", json={"name": "mysql_master", "listen": "localhost:0",
                                          "upstream": "localhost:3306"})
    assert response.status_code == 201
    port = int(response.json()["listen"].rsplit(":", 1)[1])
    expected = (f'{{"name":"mysql_master","listen":"127.0.0.1:{port}","upstream":"localhost:3306",'
                f'"enabled":true,"Logger":{{}},"toxics":[]}}').encode()
    assert response.content == expected
    assert response.headers["content-type"] == JSON
    shown = api.get("/proxies/mysql_master")
    assert shown.status_code == 200 and shown.content == expected
    assert_error(api.get("/proxies/nope"), 404, "proxy not found")
    with connect(f"127.0.0.1:{port}"):
        pass


def test_listing_proxies_sorted_by_name(api):
    for name in ("zeta", "alpha", "mid"):
        create_proxy(api, name, "localhost:1")
    body = api.get("/proxies").json()
    assert list(body) == ["alpha", "mid", "zeta"]
    assert body["alpha"]["upstream"] == "localhost:1"


def test_create_proxy_with_toxics_in_body_ignores_them(api):
    proxy = create_proxy(api, "p", "localhost:1", toxics=[{"type": "latency"}])
    assert proxy["toxics"] == []


def test_create_proxy_case_insensitive_keys_and_null_defaults(api):
    response = api.post("/proxies", json={"NAME": "ci", "Upstream": "localhost:1", "listen": "127.0.0.1:0",
                                          "enabled": None, "unknown": [1, 2]})
    assert response.status_code == 201
    assert response.json()["name"] == "ci" and response.json()["enabled"] is True


def test_create_disabled_proxy_keeps_listen_as_given(api):
    port = free_port()
    proxy = create_proxy(api, "off", "localhost:1", listen=f"localhost:{port}", enabled=False)
    assert proxy["listen"] == f"localhost:{port}" and proxy["enabled"] is False
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_create_disabled_proxy_and_enable(api):
    port = free_port()
    create_proxy(api, "off", "localhost:1", listen=f"localhost:{port}", enabled=False)
    response = api.post("/proxies/off", json={"enabled": True})
    assert response.status_code == 200
    assert response.json()["listen"] == f"127.0.0.1:{port}"
    assert response.json()["enabled"] is True
    connect(f"127.0.0.1:{port}").close()


def test_disable_then_enable_rebinds_same_port(api):
    proxy = create_proxy(api, "p", "localhost:1")
    disabled = api.patch("/proxies/p", json={"enabled": False}).json()
    assert disabled["enabled"] is False and disabled["listen"] == proxy["listen"]
    enabled = api.patch("/proxies/p", json={"enabled": True}).json()
    assert enabled["listen"] == proxy["listen"]


def test_update_listen_or_upstream_restarts(api):
    proxy = create_proxy(api, "p", "localhost:1")
    port = proxy["listen"].rsplit(":", 1)[1]
    same = api.post("/proxies/p", json={"listen": f"localhost:{port}"}).json()
    assert same["listen"] == proxy["listen"]
    changed = api.patch("/proxies/p", json={"upstream": "localhost:2"}).json()
    assert changed["upstream"] == "localhost:2" and changed["enabled"] is True
    new_port = free_port()
    moved = api.patch("/proxies/p", json={"listen": f"127.0.0.1:{new_port}"}).json()
    assert moved["listen"] == f"127.0.0.1:{new_port}"
    assert_error(api.patch("/proxies/p", json={"listen": "foo"}), 500, "address foo: missing port in address")
    assert_error(api.patch("/proxies/p", content=b"nope"), 400,
                 "bad request body: invalid character 'o' in literal null (expecting 'u')")
    assert_error(api.patch("/proxies/missing", json={}), 404, "proxy not found")


def test_delete_proxy(api):
    proxy = create_proxy(api, "p", "localhost:1")
    response = api.delete("/proxies/p")
    assert response.status_code == 204 and response.content == b""
    assert api.get("/proxies").json() == {}
    with pytest.raises(ConnectionRefusedError):
        connect(proxy["listen"])
    assert_error(api.delete("/proxies/p"), 404, "proxy not found")


def test_create_proxy_port_conflict(api):
    port = free_port()
    create_proxy(api, "one", "localhost:1", listen=f"localhost:{port}")
    response = api.post("/proxies", json={"name": "two", "listen": f"localhost:{port}", "upstream": "localhost:1"})
    assert_error(response, 500, f"listen tcp 127.0.0.1:{port}: bind: address already in use")
    assert list(api.get("/proxies").json()) == ["one"]
    assert_error(api.post("/proxies", json={"name": "three", "listen": "local373", "upstream": "x:1"}),
                 500, "listen tcp: address local373: missing port in address")


def test_create_proxy_name_conflict(api):
    create_proxy(api, "p", "localhost:1")
    assert_error(api.post("/proxies", json={"name": "p", "listen": "localhost:0", "upstream": "localhost:2"}),
                 409, "proxy already exists")


def test_wildcard_listen_reported_as_ipv6_any(api):
    proxy = create_proxy(api, "any", "localhost:1", listen="")
    assert re.fullmatch(r"\[::\]:\d+", proxy["listen"])


# --- populate -----------------------------------------------------------------------------

def test_populate_proxy(api):
    response = api.post("/populate", json=[
        {"name": "one", "listen": "localhost:0", "upstream": "localhost:7171"},
        {"name": "two", "listen": "localhost:0", "upstream": "localhost:7171"}])
    assert response.status_code == 201
    assert response.headers["content-type"] == JSON
    assert not response.content.endswith(b"\n")
    proxies = response.json()["proxies"]
    assert [p["name"] for p in proxies] == ["one", "two"]
    assert all(p["enabled"] and p["listen"].startswith("127.0.0.1:") for p in proxies)


def test_populate_default_enabled_and_disabled(api):
    proxies = api.post("/populate", json=[
        {"name": "a", "listen": "localhost:0", "upstream": "x:1", "enabled": None},
        {"name": "b", "listen": "localhost:0", "upstream": "x:1", "enabled": False}]).json()["proxies"]
    assert [p["enabled"] for p in proxies] == [True, False]
    assert proxies[1]["listen"] == "localhost:0"


def test_populate_existing_proxy_keeps_toxics_and_replaces_differing(api):
    proxy = create_proxy(api, "keep", "localhost:7171")
    create_proxy(api, "swap", "localhost:7171")
    add_toxic(api, "keep", type="latency", attributes={"latency": 5})
    add_toxic(api, "swap", type="latency")
    port = proxy["listen"].rsplit(":", 1)[1]
    response = api.post("/populate", json=[
        {"name": "keep", "listen": f"localhost:{port}", "upstream": "localhost:7171"},
        {"name": "swap", "listen": "localhost:0", "upstream": "localhost:7272"}])
    assert response.status_code == 201
    keep, swap = response.json()["proxies"]
    assert keep["listen"] == proxy["listen"] and len(keep["toxics"]) == 1
    assert swap["upstream"] == "localhost:7272" and swap["toxics"] == []
    assert api.get("/proxies/keep").json()["toxics"][0]["attributes"]["latency"] == 5


def test_populate_with_bad_name_creates_nothing(api):
    response = api.post("/populate", json=[
        {"name": "ok", "listen": "localhost:0", "upstream": "x:1"},
        {"name": "", "listen": "localhost:0", "upstream": "x:1"}])
    assert response.status_code == 400
    assert response.headers["content-type"] == JSON
    assert response.content == b'{"error":"missing required field: name at proxy 2","status":400,"proxies":null}'
    assert api.get("/proxies").json() == {}
    response = api.post("/populate", json=[{"name": "a", "upstream": ""}])
    assert response.json()["error"] == "missing required field: upstream at proxy 1"


def test_populate_decode_errors(api):
    response = api.post("/populate", json={"name": "x"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "bad request body: json: cannot unmarshal object into Go value of type "
                 '[]struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }',
        "status": 400, "proxies": None}
    assert api.post("/populate", content=b"").json()["error"] == "bad request body: EOF"


def test_populate_empty_array_and_null(api):
    for body in (b"[]", b"null"):
        response = api.post("/populate", content=body)
        assert response.status_code == 201 and response.content == b'{"proxies":null}'


def test_populate_stops_at_listen_failure(api):
    port = free_port()
    create_proxy(api, "holder", "x:1", listen=f"127.0.0.1:{port}")
    response = api.post("/populate", json=[
        {"name": "first", "listen": "localhost:0", "upstream": "x:1"},
        {"name": "clash", "listen": f"127.0.0.1:{port}", "upstream": "x:1"},
        {"name": "never", "listen": "localhost:0", "upstream": "x:1"}])
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
    assert [p["name"] for p in body["proxies"]] == ["first"]
    assert sorted(api.get("/proxies").json()) == ["first", "holder"]


# --- toxics -------------------------------------------------------------------------------

def test_listing_toxics(api):
    create_proxy(api, "p", "localhost:1")
    response = api.get("/proxies/p/toxics")
    assert response.status_code == 200 and response.content == b"[]"
    assert_error(api.get("/proxies/nope/toxics"), 404, "proxy not found")


def test_add_toxic_defaults_and_exact_body(api):
    create_proxy(api, "p", "localhost:1")
    response = api.post("/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 1000}})
    assert response.status_code == 200
    assert response.content == (b'{"attributes":{"latency":1000,"jitter":0},"name":"latency_downstream",'
                                b'"type":"latency","stream":"downstream","toxicity":1}')
    assert api.get("/proxies/p/toxics/latency_downstream").content == response.content


@pytest.mark.parametrize("toxic_type, attributes", [
    ("latency", {"latency": 0, "jitter": 0}), ("bandwidth", {"rate": 0}), ("slow_close", {"delay": 0}),
    ("timeout", {"timeout": 0}), ("reset_peer", {"timeout": 0}),
    ("slicer", {"average_size": 0, "size_variation": 0, "delay": 0}), ("limit_data", {"bytes": 0}),
    ("noop", {})])
def test_every_toxic_type_lists_all_attributes(api, toxic_type, attributes):
    create_proxy(api, "p", "localhost:1")
    toxic = add_toxic(api, "p", type=toxic_type, stream="upstream", attributes={"bogus": 1})
    assert toxic["attributes"] == attributes
    assert list(toxic["attributes"]) == list(attributes)
    assert toxic["name"] == f"{toxic_type}_upstream"


def test_add_multiple_toxics_order_upstream_first(api):
    create_proxy(api, "p", "localhost:1")
    add_toxic(api, "p", type="latency", name="d1")
    add_toxic(api, "p", type="latency", name="u1", stream="upstream")
    add_toxic(api, "p", type="bandwidth", name="d2")
    add_toxic(api, "p", type="slicer", name="u2", stream="UPSTREAM")
    toxics = api.get("/proxies/p/toxics").json()
    assert [t["name"] for t in toxics] == ["u1", "u2", "d1", "d2"]
    assert toxics[1]["stream"] == "UPSTREAM"
    assert [t["name"] for t in api.get("/proxies/p").json()["toxics"]] == ["u1", "u2", "d1", "d2"]


def test_add_conflicting_toxics(api):
    create_proxy(api, "p", "localhost:1")
    add_toxic(api, "p", type="latency", name="foo", stream="upstream")
    assert_error(api.post("/proxies/p/toxics", json={"type": "latency", "name": "foo", "stream": "downstream"}),
                 409, "toxic already exists")
    add_toxic(api, "p", type="latency")
    assert_error(api.post("/proxies/p/toxics", json={"type": "latency"}), 409, "toxic already exists")
    add_toxic(api, "p", type="latency", stream="upstream")


def test_add_toxic_validation_order_and_messages(api):
    assert_error(api.post("/proxies/nope/toxics", content=b"garbage"), 404, "proxy not found")
    create_proxy(api, "p", "localhost:1")
    assert_error(api.post("/proxies/p/toxics", content=b""), 400, "bad request body: EOF")
    assert_error(api.post("/proxies/p/toxics", json={"type": "latency", "stream": "sideways"}), 400,
                 "stream was invalid, can be either upstream or downstream")
    assert_error(api.post("/proxies/p/toxics", json={"type": "latency", "stream": ""}), 400,
                 "stream was invalid, can be either upstream or downstream")
    assert_error(api.post("/proxies/p/toxics", json={"type": "explode"}), 400, "invalid toxic type")
    assert_error(api.post("/proxies/p/toxics", json={}), 400, "invalid toxic type")
    assert_error(api.post("/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": "1"}}), 400,
                 "bad request body: json: cannot unmarshal string into Go struct field "
                 "LatencyToxic.attributes.latency of type int64")
    assert_error(api.post("/proxies/p/toxics", json={"type": "slicer", "attributes": {"delay": 1.5}}), 400,
                 "bad request body: json: cannot unmarshal number 1.5 into Go struct field "
                 "SlicerToxic.attributes.delay of type int")
    assert_error(api.post("/proxies/p/toxics", json={"type": "latency", "toxicity": "x"}), 400,
                 "bad request body: json: cannot unmarshal string into Go struct field "
                 "ToxicWrapper.toxicity of type float32")
    assert api.get("/proxies/p/toxics").json() == []


def test_add_toxic_with_toxicity_float32(api):
    create_proxy(api, "p", "localhost:1")
    response = api.post("/proxies/p/toxics", json={"type": "latency", "toxicity": 0.123456789})
    assert response.content.endswith(b'"toxicity":0.12345679}')
    for value, text in [(0.5, b"0.5"), (0, b"0"), (-1, b"-1"), (2.5, b"2.5")]:
        body = add_toxic(api, "p", type="noop", name=f"t{value}", toxicity=value)
        assert api.get(f"/proxies/p/toxics/t{value}").content.endswith(b'"toxicity":' + text + b"}")
        assert body["toxicity"] == value


def test_add_noop_and_toxic_on_disabled_proxy(api):
    create_proxy(api, "p", "localhost:1", enabled=False)
    toxic = add_toxic(api, "p", type="noop")
    assert toxic == {"attributes": {}, "name": "noop_downstream", "type": "noop",
                     "stream": "downstream", "toxicity": 1}


def test_update_toxic_merges_attributes(api):
    create_proxy(api, "p", "localhost:1")
    add_toxic(api, "p", type="latency", name="lat", toxicity=0.5, attributes={"latency": 100, "jitter": 10})
    response = api.patch("/proxies/p/toxics/lat", json={"attributes": {"jitter": 3}, "name": "other",
                                                        "type": "bandwidth", "stream": "upstream"})
    assert response.status_code == 200
    assert response.json() == {"attributes": {"latency": 100, "jitter": 3}, "name": "lat", "type": "latency",
                               "stream": "downstream", "toxicity": 0.5}
    response = api.post("/proxies/p/toxics/lat", json={"toxicity": 1})
    assert response.json()["toxicity"] == 1 and response.json()["attributes"]["latency"] == 100
    assert_error(api.patch("/proxies/p/toxics/lat", content=b""), 400, "bad request body: EOF")
    assert_error(api.patch("/proxies/p/toxics/lat", json={"attributes": {"latency": True}}), 400,
                 "bad request body: json: cannot unmarshal bool into Go struct field "
                 "LatencyToxic.attributes.latency of type int64")
    assert_error(api.patch("/proxies/p/toxics/lat", json={"toxicity": []}), 400,
                 "bad request body: json: cannot unmarshal array into Go struct field .toxicity of type float32")
    assert_error(api.patch("/proxies/p/toxics/nope", content=b"garbage"), 404, "toxic not found")
    assert_error(api.patch("/proxies/nope/toxics/lat", json={}), 404, "proxy not found")
    assert api.get("/proxies/p/toxics/lat").json()["attributes"] == {"latency": 100, "jitter": 3}


def test_remove_toxic(api):
    create_proxy(api, "p", "localhost:1")
    add_toxic(api, "p", type="latency")
    response = api.delete("/proxies/p/toxics/latency_downstream")
    assert response.status_code == 204 and response.content == b""
    assert api.get("/proxies/p/toxics").json() == []
    assert_error(api.delete("/proxies/p/toxics/latency_downstream"), 404, "toxic not found")
    assert_error(api.get("/proxies/p/toxics/latency_downstream"), 404, "toxic not found")
    assert_error(api.delete("/proxies/nope/toxics/x"), 404, "proxy not found")


def test_reset_state_enables_proxies_and_removes_toxics(api):
    create_proxy(api, "p", "localhost:1")
    add_toxic(api, "p", type="latency")
    api.post("/proxies/p", json={"enabled": False})
    response = api.post("/reset", content=b"ignored body")
    assert response.status_code == 204 and response.content == b""
    proxy = api.get("/proxies/p").json()
    assert proxy["enabled"] is True and proxy["toxics"] == []


def test_reset_reports_listen_failure(api):
    port = free_port()
    create_proxy(api, "p", "localhost:1", listen=f"127.0.0.1:{port}")
    api.post("/proxies/p", json={"enabled": False})
    blocker = socket.create_server(("127.0.0.1", port))
    try:
        assert_error(api.post("/reset"), 500, f"listen tcp 127.0.0.1:{port}: bind: address already in use")
    finally:
        blocker.close()


def test_keep_alive_serves_many_requests_on_one_connection(api):
    for _ in range(20):
        assert api.get("/version").status_code == 200


# --- servers with their own options -------------------------------------------------------

def test_proxy_metrics_received_and_sent_bytes(server_with_metrics, echo_upstream):
    with httpx.Client(base_url=server_with_metrics.url, timeout=5) as client:
        proxy = create_proxy(client, "test", echo_upstream.address)
        with connect(proxy["listen"]) as sock:
            sock.sendall(b"hello")
            assert sock.recv(5) == b"hello"
        deadline = time.monotonic() + 5
        labels = f'direction="upstream",listener="{proxy["listen"]}",proxy="test",upstream="{echo_upstream.address}"'
        while time.monotonic() < deadline:
            text = client.get("/metrics").text
            if f"toxiproxy_proxy_sent_bytes_total{{{labels}}} 5.0" in text:
                break
            time.sleep(0.05)
        assert f"toxiproxy_proxy_received_bytes_total{{{labels}}} 5.0" in text
        assert f"toxiproxy_proxy_sent_bytes_total{{{labels}}} 5.0" in text
        assert client.post("/metrics").status_code == 200


def test_stuck_handler_is_bounded_with_503():
    server = ServerThread(handler_timeout_s=0.5)
    try:
        with socket.create_connection(("127.0.0.1", server.server.port), timeout=5) as sock:
            sock.settimeout(5)
            sock.sendall(b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"name\":")
            reply = b""
            while b"</html>" not in reply:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 503 ")
        assert reply.endswith(b"<html><head><title>Timeout</title></head><body><h1>Timeout</h1></body></html>")
        assert b"X-Toxiproxy-Request-Id" in reply
        with httpx.Client(base_url=server.url, timeout=5) as client:
            assert client.get("/version").status_code == 200
    finally:
        server.stop()


def test_malformed_request_gets_400(toxiproxy):
    with socket.create_connection(("127.0.0.1", toxiproxy.server.port), timeout=5) as sock:
        sock.settimeout(5)
        sock.sendall(b"NOT A REQUEST\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400 Bad Request")
