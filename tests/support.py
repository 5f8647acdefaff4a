"""Small helpers for tests that talk to a running stack as a user would."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import httpx
import pytest

from chaos.stack.embedded import StackInfo
from chaos.stack.tokens import mint_access_token


def require_tool(name: str) -> str:
    """Path of a tool on PATH or beside this interpreter (where pip puts tools such as actionlint);
    skip the test without it, but fail when GENCHAOS_REQUIRE_TOOLS=1 (CI, where .ci/run installs them)."""
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path:
        return path
    reason = f"'{name}' is not installed (promtool, prometheus, chromium, docker-compose: Debian packages; actionlint: pip)"
    if os.environ.get("GENCHAOS_REQUIRE_TOOLS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


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
