"""A generation from request to stored image, on the real embedded stack."""

from __future__ import annotations

import uuid

import httpx

from chaos.stack.embedded import EmbeddedStack
from tests.support import auth_headers, submit, wait_terminal

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_generation_completes_and_image_is_retrievable(stack: EmbeddedStack):
    info = stack.info
    headers = auth_headers(info)
    accepted = submit(info, headers)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "pending"

    done = wait_terminal(info, headers, accepted.json()["id"])
    assert done["status"] == "completed", done
    image = httpx.get(done["image_url"], timeout=10)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(PNG_SIGNATURE)


def test_another_users_generation_is_not_found(stack: EmbeddedStack):
    info = stack.info
    owner = auth_headers(info)
    generation_id = submit(info, owner).json()["id"]
    stranger = auth_headers(info)
    response = httpx.get(f"{info.service_url}/api/v1/generations/{generation_id}", headers=stranger, timeout=10)
    assert response.status_code == 404
    listing = httpx.get(f"{info.service_url}/api/v1/generations", headers=stranger, timeout=10).json()
    assert generation_id not in [item["id"] for item in listing["items"]]


def test_same_idempotency_key_gives_one_generation(stack: EmbeddedStack):
    info = stack.info
    headers = {**auth_headers(info, str(uuid.uuid4())), "Idempotency-Key": str(uuid.uuid4())}
    first = submit(info, headers).json()["id"]
    second = submit(info, headers).json()["id"]
    assert first == second
