"""Who is calling: verification of Supabase access tokens (and, only if enabled, the report's legacy format).

Messages name what is wrong with a token but never echo any part of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import jwt

LEGACY_PREFIX = "supabase_token_"
ALGORITHMS = ["HS256"]
AUDIENCE = "authenticated"
LEEWAY_S = 5


class AuthError(Exception):
    """A request without valid credentials; `error_code` goes into WWW-Authenticate (None when absent).

    401 by default; 400 for a request no token could make valid (RFC 6750's invalid_request).
    """

    def __init__(self, message: str, error_code: str | None = "invalid_token", status_code: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.status_code = status_code

    def www_authenticate(self) -> str:
        if self.error_code is None:
            return "Bearer"
        return f'Bearer error="{self.error_code}", error_description="{self.message}"'


@dataclass(frozen=True)
class TokenVerifier:
    secret: str
    issuer: str
    legacy_tokens_enabled: bool = False
    max_token_bytes: int = 4096

    def user_id_from_headers(self, authorizations: Sequence[str]) -> uuid.UUID:
        """The caller's user id from the request's `Authorization: Bearer <token>` header(s), or AuthError.

        Two headers are refused rather than one picked: proxies and frameworks disagree on which wins.
        """
        if len(authorizations) > 1:
            raise AuthError(f"Send one Authorization header; this request has {len(authorizations)}.",
                            "invalid_request", status_code=400)
        return self.user_id_from_header(authorizations[0] if authorizations else None)

    def user_id_from_header(self, authorization: str | None) -> uuid.UUID:
        """The caller's user id from an `Authorization: Bearer <token>` header, or AuthError."""
        if not authorization:
            raise AuthError("Missing Authorization header; send 'Authorization: Bearer <access token>'.", None)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("Malformed Authorization header; expected 'Bearer <access token>'.", "invalid_request")
        if len(token) > self.max_token_bytes:
            raise AuthError(f"Access token is too large (limit {self.max_token_bytes} bytes).")
        if token.startswith(LEGACY_PREFIX):
            return self._legacy_user_id(token)
        return self._verified_user_id(token)

    def _legacy_user_id(self, token: str) -> uuid.UUID:
        if not self.legacy_tokens_enabled:
            raise AuthError("Legacy supabase_token_ credentials are disabled; send a Supabase access token.")
        try:
            return uuid.UUID(token.removeprefix(LEGACY_PREFIX))
        except ValueError:
            raise AuthError("Legacy token does not carry a valid user UUID.") from None

    def _verified_user_id(self, token: str) -> uuid.UUID:
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=ALGORITHMS, audience=AUDIENCE, issuer=self.issuer,
                leeway=LEEWAY_S, options={"require": ["exp", "aud", "iss", "sub"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("Access token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("Access token is not valid yet (nbf).") from None
        except jwt.InvalidAudienceError:
            raise AuthError("Access token audience is not 'authenticated'.") from None
        except jwt.InvalidIssuerError:
            raise AuthError("Access token was not issued by this project.") from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthError(f"Access token lacks the '{error.claim}' claim.") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError("Access token algorithm is not allowed (HS256 only).") from None
        except jwt.InvalidSignatureError:
            raise AuthError("Access token signature is invalid.") from None
        except jwt.InvalidTokenError:
            raise AuthError("Access token is malformed or invalid.") from None
        if claims.get("role") != "authenticated":
            raise AuthError("Access token is not a user token (role must be 'authenticated').")
        try:
            return uuid.UUID(str(claims["sub"]))
        except ValueError:
            raise AuthError("Access token subject is not a user UUID.") from None
