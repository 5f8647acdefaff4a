"""The API as a client sees it: validation, size limits, ownership, idempotency, pagination, probes."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

BODY = {"model_id": "fal-ai/flux/dev", "prompt": "a lighthouse at dusk"}

INVALID_BODIES = {
    "missing prompt": ({"model_id": "fal-ai/flux/dev"}, "prompt"),
    "empty prompt": ({**BODY, "prompt": ""}, "prompt"),
    "prompt too long": ({**BODY, "prompt": "x" * 2001}, "prompt"),
    "reference not a URL": ({**BODY, "reference_image_url": "file:///etc/passwd"}, "reference_image_url"),
    "parameters not an object": ({**BODY, "parameters": [1, 2]}, "parameters"),
    "too many parameters": ({**BODY, "parameters": {f"k{i}": i for i in range(40)}}, "parameters"),
    "unknown field": ({**BODY, "sudo": True}, "sudo"),
    "NUL in prompt": ({**BODY, "prompt": "a\u0000b"}, "prompt"),  # found by fuzzing: was a 500
    "NUL in parameters": ({**BODY, "parameters": {"style": ["a\u0000"]}}, "parameters"),
}


async def test_bad_requests_get_clear_4xx(service):
    async with service.client(service.token()) as client:
        for case, (body, field) in INVALID_BODIES.items():
            response = await client.post("/api/v1/generations", json=body)
            assert response.status_code == 422, case
            assert field in response.json()["detail"], (case, response.json())
        not_json = await client.post("/api/v1/generations", content=b"{nope",
                                     headers={"Content-Type": "application/json"})
        assert not_json.status_code == 422
        assert "JSON" in not_json.json()["detail"]
        too_big = await client.post("/api/v1/generations", json={**BODY, "negative_prompt": "x" * 70_000})
        assert too_big.status_code == 413
        assert "too large" in too_big.json()["detail"]
        async def chunks():
            for _ in range(10):
                yield b"x" * 10_000

        streamed = await client.post("/api/v1/generations", content=chunks(),
                                     headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413
        bad_key = await client.post("/api/v1/generations", json=BODY, headers={"Idempotency-Key": "k" * 300})
        assert bad_key.status_code == 422
        bad_page = await client.get("/api/v1/generations", params={"limit": 0})
        assert bad_page.status_code == 422


async def test_only_the_owner_sees_a_generation(service):
    async with service.client(service.token()) as owner, service.client(service.token()) as stranger:
        created = (await owner.post("/api/v1/generations", json=BODY)).json()
        assert (await owner.get(f"/api/v1/generations/{created['id']}")).status_code == 200
        hidden = await stranger.get(f"/api/v1/generations/{created['id']}")
        assert hidden.status_code == 404
        assert (await stranger.get("/api/v1/generations")).json()["total"] == 0
        assert (await owner.get("/api/v1/generations/not-a-uuid")).status_code == 404


async def test_idempotency_key_gives_one_generation(service, database_url):
    user = uuid.uuid4()
    async with service.client(service.token(user)) as client:
        headers = {"Idempotency-Key": "order-42"}
        first = await client.post("/api/v1/generations", json=BODY, headers=headers)
        again = await client.post("/api/v1/generations", json=BODY, headers=headers)
        assert first.status_code == 202 and again.status_code == 200
        assert again.json()["id"] == first.json()["id"]

        racing = await asyncio.gather(*(client.post("/api/v1/generations", json=BODY,
                                                    headers={"Idempotency-Key": "race"}) for _ in range(8)))
        assert {r.status_code for r in racing} <= {200, 202}
        assert len({r.json()["id"] for r in racing}) == 1

        different = await client.post("/api/v1/generations", json={**BODY, "prompt": "other"}, headers=headers)
        assert different.status_code == 409
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM generations WHERE user_id = $1", user) == 2
    finally:
        await conn.close()


async def test_list_is_newest_first_and_paginated(service):
    async with service.client(service.token()) as client:
        ids = [(await client.post("/api/v1/generations", json={**BODY, "prompt": f"p{i}"})).json()["id"]
               for i in range(5)]
        page = (await client.get("/api/v1/generations", params={"limit": 2, "offset": 1})).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [g["id"] for g in page["items"]] == list(reversed(ids))[1:3]


async def test_probes_and_metrics(service):
    async with service.client() as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        metrics = (await client.get("/metrics")).text
    assert ready.status_code == 200
    body = ready.json()
    assert body["profile"] == "hardened"
    assert {d: s["state"] for d, s in body["dependencies"].items()} == {
        "database": "up", "fal": "up", "storage": "up"}
    assert set(body["breakers"]) == {"fal", "database", "storage"}
    for name in ("genchaos_http_requests_total", "genchaos_breaker_state", "genchaos_dependency_up",
                 "genchaos_upstream_attempts_total", "genchaos_build_info", "genchaos_generation_queue_depth"):
        assert name in metrics
    assert 'route="/readyz"' in metrics
