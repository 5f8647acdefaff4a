"""The harness's HTTP clients drop an idle connection well before uvicorn, which serves the service and
both emulators, closes it: a request sent on a connection the server is closing gets no answer, and the
judge would count that against the service."""

from __future__ import annotations

import uvicorn

from chaos.stack.keepalive import IDLE_CONNECTION_S, pool_limits


def test_idle_connections_are_dropped_well_before_the_servers_close_them():
    servers_keep_alive_s = uvicorn.Config(app=lambda scope, receive, send: None).timeout_keep_alive
    assert IDLE_CONNECTION_S <= servers_keep_alive_s / 2
    limits = pool_limits(max_connections=3)
    assert (limits.keepalive_expiry, limits.max_connections) == (IDLE_CONNECTION_S, 3)
