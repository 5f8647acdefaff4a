"""Who is calling: a Supabase access token (HS256) in `Authorization: Bearer ...`.

The report's legacy `supabase_token_<uuid>` form is accepted only with LUMEN_ALLOW_LEGACY_TOKENS=true,
since anyone can write one.
"""

from __future__ import annotations

import uuid

import jwt
from fastapi import HTTPException, Request

from lumen.config import Config

LEGACY_PREFIX = "supabase_token_"


def _refuse(reason: str) -> HTTPException:
    return HTTPException(status_code=401, detail=reason, headers={"WWW-Authenticate": "Bearer"})


def _as_uuid(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def user_from_token(token: str, config: Config) -> str:
    """The caller's user id, or an HTTPException(401)."""
    if token.startswith(LEGACY_PREFIX):
        user = _as_uuid(token[len(LEGACY_PREFIX):])
        if config.allow_legacy_tokens and user:
            return user
        raise _refuse("Invalid authentication token")
    try:
        claims = jwt.decode(
            token,
            config.jwt_secret,
            algorithms=["HS256"],
            audience="authenticated",
            issuer=config.jwt_issuer,
            options={"require": ["exp", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise _refuse("Token has expired") from None
    except jwt.PyJWTError:
        raise _refuse("Invalid authentication token") from None
    user = _as_uuid(claims.get("sub"))
    if user is None or claims.get("role") != "authenticated":
        raise _refuse("Invalid authentication token")
    return user


def current_user(request: Request) -> str:
    """FastAPI dependency: the authenticated user's id."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _refuse("Missing bearer token")
    return user_from_token(token.strip(), request.app.state.lumen.config)
