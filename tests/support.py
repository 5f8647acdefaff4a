"""Small helpers for tests that talk to a running stack as a user would."""

from __future__ import annotations

import time

import httpx

from chaos.stack import StackInfo
from chaos.tokens import mint_access_token


def auth_headers(info: StackInfo, sub: str | None = None) -> dict[str, str]:
    """Headers of a signed-in user (a new one unless ``sub`` is given)."""
    return {"Authorization": f"Bearer {mint_access_token(info.jwt_secret, info.jwt_issuer, sub)}"}


def submit(info: StackInfo, headers: dict[str, str], prompt: str = "a lighthouse at dusk", **fields) -> httpx.Response:
    """POST a generation as the user of ``headers``."""
    return httpx.post(f"{info.service_url}/api/v1/generations", headers=headers, timeout=10,
                      json={"model_id": "fal-ai/flux/dev", "prompt": prompt, **fields})


def wait_terminal(info: StackInfo, headers: dict[str, str], generation_id: str, timeout_s: float = 30) -> dict:
    """Poll a generation until it is completed or failed; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    body: dict = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{info.service_url}/api/v1/generations/{generation_id}", headers=headers, timeout=10)
        if response.status_code == 200:
            body = response.json()
            if body["status"] in ("completed", "failed"):
                return body
        time.sleep(0.1)
    raise AssertionError(f"generation {generation_id} not terminal after {timeout_s} s: {body}")
