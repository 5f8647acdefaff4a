"""Supabase-style user access tokens, minted with the stack's JWT secret for test users."""

from __future__ import annotations

import time
import uuid

import jwt

# A key shorter than the hash (32 bytes for HS256) is refused, not just warned about (RFC 7518 3.2):
# a test that mints with a toy secret would otherwise test a configuration nobody should run.
_ENCODER = jwt.PyJWT(options={"enforce_minimum_key_length": True})


def mint_access_token(secret: str, issuer: str, sub: str | None = None, *, expires_in_s: int = 3600, **claims) -> str:
    """An HS256 access token shaped like Supabase Auth's (aud, role, sub, exp); ``claims`` override any field.

    Raises jwt.InvalidKeyError when ``secret`` is shorter than 32 bytes.
    """
    now = int(time.time())
    payload = {
        "iss": issuer,
        "aud": "authenticated",
        "sub": sub or str(uuid.uuid4()),
        "role": "authenticated",
        "aal": "aal1",
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
        "iat": now,
        "exp": now + expires_in_s,
        **claims,
    }
    return _ENCODER.encode(payload, secret, algorithm="HS256")
