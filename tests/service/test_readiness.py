"""/readyz is unauthenticated: it names why a dependency is down with a fixed code, and the error
text (hosts, ports, library internals) goes only to the log."""

from __future__ import annotations

import logging

from chaos.stack.processes import free_port
from tests.service.conftest import wait_for


async def test_a_down_dependency_shows_a_reason_code_and_the_detail_is_logged(start_service, caplog):
    closed_port = free_port()  # nothing listens here: connecting is refused
    with caplog.at_level(logging.WARNING, logger="service.health"):
        async with start_service(supabase_url=f"http://127.0.0.1:{closed_port}") as svc:
            async with svc.client() as client:
                async def storage_down() -> bool:
                    ready = (await client.get("/readyz")).json()
                    return ready["dependencies"]["storage"]["state"] == "down"

                await wait_for(storage_down, what="storage to be reported down")
                response = await client.get("/readyz")
    assert response.status_code == 503
    storage = response.json()["dependencies"]["storage"]
    assert storage["reason"] in {"connection_refused", "unreachable"}
    for leak in ("Errno", "Connect", str(closed_port)):
        assert leak not in response.text, f"/readyz shows {leak!r}"
    logged = [r for r in caplog.records if getattr(r, "dependency", None) == "storage"]
    assert logged and "Connect" in logged[0].error  # the detail is where operators look
