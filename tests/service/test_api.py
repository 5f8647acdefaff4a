"""The API as a client sees it: validation, size limits, ownership, idempotency, pagination, probes."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from tests.service.conftest import wait_for

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
    # Forwarded to FAL as given, so only the documented, bounded names are accepted.
    "parameter FAL would take as the reference": (
        {**BODY, "parameters": {"image_url": "file:///etc/passwd", "num_images": 100}}, "'image_url'"),
    "too many images": ({**BODY, "parameters": {"num_images": 100}}, "num_images"),
    "seed out of range": ({**BODY, "parameters": {"seed": 2**40}}, "seed"),
    "boolean as a count": ({**BODY, "parameters": {"num_inference_steps": True}}, "num_inference_steps"),
    "image size not in the enum": ({**BODY, "parameters": {"image_size": "poster"}}, "image_size"),
    "image size too wide": ({**BODY, "parameters": {"image_size": {"width": 100_000, "height": 512}}}, "width"),
    "reference with credentials": ({**BODY, "reference_image_url": "https://user:pw@example.com/a.png"},
                                   "credentials"),
}

# JSON that httpx's encoder would not produce, sent as raw bytes, and a word the 422 must contain.
# Each was a 500 before.
RAW_BAD_PARAMETERS = {
    "NaN": ('{"guidance_scale": NaN}', "finite"),
    "Infinity": ('{"guidance_scale": -Infinity}', "finite"),
    "overflowing literal": ('{"seed": 1e400}', "finite"),
    "unpaired surrogate in a key": ('{"\\ud800": 1}', "surrogate"),
    "unpaired surrogate in a value": ('{"output_format": "\\udfff"}', "surrogate"),
    "nested 400 deep": ('{"x": ' + "[" * 400 + "]" * 400 + "}", "levels"),
}

# Every notation of a non-public host (decimal, octal, hex, short IPv4; IPv6 loopback, mapped, compatible).
PRIVATE_REFERENCE_URLS = [
    "http://127.0.0.1/a.png", "http://2130706433/a.png", "http://0177.0.0.1/a.png", "http://0x7f.1/a.png",
    "http://127.1/a.png", "http://[::1]/a.png", "http://[::ffff:127.0.0.1]/a.png", "http://[::127.0.0.1]/a.png",
    "http://169.254.169.254/latest/meta-data/", "http://10.0.0.7/a.png", "http://192.168.1.1/a.png",
    "http://0.0.0.0/a.png", "http://224.0.0.1/a.png", "http://localhost/a.png",
]


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


async def test_parameters_postgresql_cannot_store_get_422(service):
    async with service.client(service.token()) as client:
        for case, (parameters, word) in RAW_BAD_PARAMETERS.items():
            body = '{"model_id": "fal-ai/flux/dev", "prompt": "p", "parameters": ' + parameters + "}"
            response = await client.post("/api/v1/generations", content=body.encode(),
                                         headers={"Content-Type": "application/json"})
            assert response.status_code == 422, (case, response.status_code, response.text[:300])
            assert "parameters" in response.json()["detail"] and word in response.json()["detail"], case
        surrogate_prompt = await client.post("/api/v1/generations", headers={"Content-Type": "application/json"},
                                             content=b'{"model_id": "m", "prompt": "a\\ud83d"}')
        assert surrogate_prompt.status_code == 422
        assert "prompt" in surrogate_prompt.json()["detail"]
        surrogate_field = await client.post("/api/v1/generations", headers={"Content-Type": "application/json"},
                                            content=b'{"model_id": "m", "prompt": "p", "\\ud800x": 1}')
        assert surrogate_field.status_code == 422


async def test_nesting_at_any_depth_is_a_clean_4xx(service):
    """Shallow enough for the JSON parser: 422 from the depth check; deeper: 400 from the parser."""
    async with service.client(service.token()) as client:
        for depth in (9, 350, 700, 980, 2000, 10_000):
            deep = b'{"model_id": "m", "prompt": "p", "parameters": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
            response = await client.post("/api/v1/generations", content=deep,
                                         headers={"Content-Type": "application/json"})
            assert response.status_code in (400, 422), (depth, response.status_code, response.text[:300])
            assert "deep" in response.json()["detail"] or "levels" in response.json()["detail"], depth
        assert (await client.get("/healthz")).status_code == 200


async def test_reference_urls_into_private_networks_get_422(service):
    async with service.client(service.token()) as client:
        accepted = {}
        for url in PRIVATE_REFERENCE_URLS:
            response = await client.post("/api/v1/generations", json={**BODY, "reference_image_url": url})
            if response.status_code != 422 or "reference_image_url" not in response.json()["detail"]:
                accepted[url] = response.status_code
        assert accepted == {}
        public = await client.post("/api/v1/generations",
                                   json={**BODY, "reference_image_url": "https://example.com/cat.png"})
        assert public.status_code == 202  # the control: a public URL still goes through


async def test_every_accepted_parameter_round_trips_and_the_model_takes_it(service):
    parameters = {"num_images": 2, "image_size": {"width": 768, "height": 512}, "seed": 4242,
                  "guidance_scale": 3.5, "num_inference_steps": 4, "enable_safety_checker": False,
                  "output_format": "png", "acceleration": "regular"}
    async with service.client(service.token()) as client:
        created = await client.post("/api/v1/generations", json={**BODY, "parameters": parameters})
        assert created.status_code == 202, created.text
        assert created.json()["parameters"] == parameters
        generation_id = created.json()["id"]

        async def finished() -> bool:
            body = (await client.get(f"/api/v1/generations/{generation_id}")).json()
            return body["status"] in ("completed", "failed")

        await wait_for(finished, what="the generation to finish")
        done = (await client.get(f"/api/v1/generations/{generation_id}")).json()
    assert done["status"] == "completed", done
    assert done["parameters"] == parameters


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


@pytest.mark.parametrize("profile", ["hardened", "as_written"])
async def test_one_user_cannot_take_everyone_s_capacity(start_service, fal_emulator, profile):
    """Hardened: a user with GENCHAOS_MAX_UNFINISHED_PER_USER unfinished generations gets a 429 with
    Retry-After, while another user is still admitted and a replayed Idempotency-Key still answers.
    The as_written profile stays as written: no per-user bound."""
    await fal_emulator.set_behaviour(queue_time_s=30)  # nothing finishes during the test
    async with start_service(profile=profile, max_unfinished_per_user=3) as svc:
        flooder, other = uuid.uuid4(), uuid.uuid4()
        async with svc.client(svc.token(flooder)) as client:
            first = await client.post("/api/v1/generations", json=BODY, headers={"Idempotency-Key": "k1"})
            statuses = [(await client.post("/api/v1/generations", json=BODY)).status_code for _ in range(4)]
            over = await client.post("/api/v1/generations", json=BODY)
            replay = await client.post("/api/v1/generations", json=BODY, headers={"Idempotency-Key": "k1"})
        async with svc.client(svc.token(other)) as client:
            others = await client.post("/api/v1/generations", json=BODY)
    assert first.status_code == 202 and others.status_code == 202
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    if profile == "as_written":
        assert statuses == [202] * 4 and over.status_code == 202
        return
    assert statuses == [202, 202, 429, 429]
    assert over.status_code == 429 and over.headers["retry-after"].isdigit()
    assert "3 of your generations are unfinished (limit 3)" in over.json()["detail"]


async def test_the_per_user_bound_is_in_the_openapi_schema(service):
    async with service.client(None) as client:
        schema = (await client.get("/openapi.json")).json()
    answer = schema["paths"]["/api/v1/generations"]["post"]["responses"]["429"]
    assert "Retry-After" in answer["headers"] and "GENCHAOS_MAX_UNFINISHED_PER_USER" in answer["description"]
