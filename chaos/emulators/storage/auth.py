"""Who is calling: the gateway's ``apikey`` check, then storage-api's bearer token, both as the
hosted stack makes them; also the signing of signed-URL tokens with the project secret."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import Request

from chaos.emulators.storage.errors import GatewayAuthError, StorageError, access_denied

CALLER_ROLES = ("service_role", "authenticated")  # roles allowed to act on storage


@dataclass(frozen=True)
class Caller:
    role: str
    user_id: str | None  # the token's ``sub`` for signed-in users


class Authenticator:
    """Checks the gateway's ``apikey`` and storage-api's bearer token."""

    _JOSE_MESSAGES = {
        jwt.ExpiredSignatureError: '"exp" claim timestamp check failed',
        jwt.InvalidSignatureError: "signature verification failed",
        jwt.DecodeError: "Invalid Compact JWS",
    }

    def __init__(self, service_key: str, jwt_secret: str) -> None:
        self.service_key = service_key
        self.jwt_secret = jwt_secret

    def __call__(self, request: Request) -> Caller:
        apikey = request.headers.get("apikey")
        if not apikey:
            raise GatewayAuthError("No API key found in request")
        if apikey != self.service_key and self._claims_or_none(apikey) is None:
            raise GatewayAuthError("Invalid API key")
        authorization = request.headers.get("authorization")
        if authorization is None:
            token = apikey
        else:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise access_denied("Invalid Compact JWS")
            token = token.strip()
        if token == self.service_key:
            return Caller("service_role", None)
        claims = self.decode(token, error=access_denied)
        if claims.get("role") not in CALLER_ROLES:
            raise access_denied(f"role {claims.get('role')!r} may not use storage")
        return Caller(claims["role"], claims.get("sub"))

    def decode(self, token: str, error: Callable[[str], StorageError]) -> dict[str, Any]:
        """Verify an HS256 token signed with the project secret, mapping failures to ``error``."""
        try:
            return jwt.decode(token, self.jwt_secret, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.PyJWTError as exc:
            message = next((text for kind, text in self._JOSE_MESSAGES.items() if isinstance(exc, kind)), str(exc))
            raise error(message) from None

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def _claims_or_none(self, token: str) -> dict[str, Any] | None:
        try:
            claims = self.decode(token, error=access_denied)
        except StorageError:
            return None
        return claims if "role" in claims else None
