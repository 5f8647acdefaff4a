"""Every answer carries a request id for the logs, and is counted by route template, method and status."""

from __future__ import annotations

import uuid


async def test_a_client_request_id_is_echoed_cut_to_64_characters_and_a_missing_one_is_made_up(service):
    async with service.client() as client:
        echoed = await client.get("/healthz", headers={"X-Request-ID": "r" * 100})
        made_up = [await client.get("/healthz") for _ in range(2)]
    assert echoed.headers["x-request-id"] == "r" * 64
    ids = [response.headers["x-request-id"] for response in made_up]
    assert ids[0] != ids[1] and all(len(i) == 32 for i in ids)


async def test_answers_are_counted_by_route_template_method_and_status(service):
    async with service.client(service.token()) as client:
        for _ in range(3):
            assert (await client.get(f"/api/v1/generations/{uuid.uuid4()}")).status_code == 404
        assert (await client.get("/no/such/route")).status_code == 404
        exposition = (await client.get("/metrics")).text
    counted = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in exposition.splitlines()
               if line.startswith("genchaos_http_requests_total{")}
    assert counted['genchaos_http_requests_total{method="GET",route="/api/v1/generations/{generation_id}",'
                   'status="404"}'] == 3
    assert counted['genchaos_http_requests_total{method="GET",route="unmatched",status="404"}'] == 1
