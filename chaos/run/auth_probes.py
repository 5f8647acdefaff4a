"""Forged and stale tokens sent beside the load: each must be refused with 401/403. A valid token that
is refused shows in ``auth_failures``; these show the other half, a token that should not pass."""

from __future__ import annotations

import time

import httpx

from chaos.run.protocol import GENERATIONS_PATH
from chaos.stack.tokens import mint_access_token

EXPIRED_FOR_S = 600  # well past any clock-skew leeway


def forged_tokens(secret: str, issuer: str) -> dict[str, str]:
    """What an attacker or a stale client sends, by name."""
    now = int(time.time())
    return {
        "expired": mint_access_token(secret, issuer, iat=now - 2 * EXPIRED_FOR_S, exp=now - EXPIRED_FOR_S),
        "wrong audience": mint_access_token(secret, issuer, aud="someone-else"),
        "wrong issuer": mint_access_token(secret, "https://attacker.example/auth/v1"),
        "wrong secret": mint_access_token("an-attacker-s-own-secret-of-forty-bytes!", issuer),
        "anon role": mint_access_token(secret, issuer, role="anon"),
        "not a uuid subject": mint_access_token(secret, issuer, sub="admin"),
    }


async def accepted_forgeries(client: httpx.AsyncClient, secret: str, issuer: str) -> list[str]:
    """The names of forged tokens the service did not refuse with 401 or 403."""
    accepted = []
    for name, token in forged_tokens(secret, issuer).items():
        try:
            response = await client.post(GENERATIONS_PATH, json={"model_id": "fal-ai/flux/dev", "prompt": "probe"},
                                         headers={"Authorization": f"Bearer {token}"}, timeout=10)
        except httpx.HTTPError:
            continue
        if response.status_code not in (401, 403):
            accepted.append(f"{name} ({response.status_code})")
    return accepted
