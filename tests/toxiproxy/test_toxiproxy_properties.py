"""Malformed and mistyped bodies: always a 4xx with the reference's message, server alive."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toxiproxy_support import add_toxic, create_proxy

MESSAGE_PREFIXES = ("bad request body: ", "missing required field: ", "stream was invalid",
                    "invalid toxic type", "toxic already exists", "proxy already exists")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)
field_names = st.sampled_from(["name", "NAME", "listen", "upstream", "enabled", "type", "stream",
                               "toxicity", "attributes", "Logger", "latency", "rate", "bytes"])
bodies = (st.binary(max_size=64)
          | json_values.map(lambda v: json.dumps(v).encode())
          | st.dictionaries(field_names, json_values, max_size=5).map(lambda v: json.dumps(v).encode())
          | st.dictionaries(field_names, json_values, max_size=5).map(lambda v: json.dumps(v).encode()[:-1]))

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def listen_failure(body: dict) -> bool:
    """A 500 the reference also gives: binding the listen address failed ("listen tcp: ..."), or, on a
    PATCH, resolving it did (Go's net.ResolveTCPAddr: "address X: missing port in address")."""
    return "listen tcp" in body["error"] or body["error"].startswith("address ")


def assert_client_error(response) -> None:
    if response.status_code < 300:
        return
    body = response.json()
    assert 400 <= response.status_code < 500 or response.status_code == 500 and listen_failure(body), response.text
    assert body["status"] == response.status_code
    assert body["error"].startswith(MESSAGE_PREFIXES) or listen_failure(body)


@SETTINGS
@given(body=bodies)
def test_proxy_bodies(api, body):
    create_proxy(api, "fixed", "localhost:1")
    for method, path in [("POST", "/proxies"), ("PATCH", "/proxies/fixed"), ("POST", "/populate")]:
        response = api.request(method, path, content=body)
        assert_client_error(response)
        if response.status_code == 400 and path != "/populate":
            assert response.text.endswith("\n")
    api.delete("/proxies/fixed")
    for name in api.get("/proxies").json():
        api.delete(f"/proxies/{name}")
    assert api.get("/version").status_code == 200


@SETTINGS
@given(body=bodies, toxic_type=st.sampled_from(["latency", "bandwidth", "slicer", "limit_data", "timeout"]))
def test_toxic_bodies(api, body, toxic_type):
    create_proxy(api, "fixed", "localhost:1")
    add_toxic(api, "fixed", type=toxic_type, name="existing")
    for method, path in [("POST", "/proxies/fixed/toxics"), ("PATCH", "/proxies/fixed/toxics/existing")]:
        assert_client_error(api.request(method, path, content=body))
    api.delete("/proxies/fixed")
    assert api.get("/version").status_code == 200


@SETTINGS
@given(attributes=st.dictionaries(st.sampled_from(["latency", "jitter", "rate", "average_size",
                                                   "size_variation", "delay", "bytes", "timeout"]),
                                  json_values, max_size=4),
       toxic_type=st.sampled_from(["latency", "bandwidth", "slicer", "limit_data", "timeout", "slow_close"]))
def test_wrongly_typed_attributes_rejected_with_go_message(api, attributes, toxic_type):
    create_proxy(api, "fixed", "localhost:1")
    response = api.post("/proxies/fixed/toxics", json={"type": toxic_type, "attributes": attributes})
    if response.status_code == 200:
        stored = response.json()["attributes"]
        for key, value in attributes.items():
            if key in stored and value is not None:
                assert stored[key] == value and isinstance(value, int) and not isinstance(value, bool)
    else:
        assert response.status_code == 400
        assert response.json()["error"].startswith("bad request body: json: cannot unmarshal ")
    api.delete("/proxies/fixed")
