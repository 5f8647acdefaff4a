"""Every way a caller can present bad credentials gets a 401 with WWW-Authenticate and a clear message,
and no part of any token reaches the logs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chaos.stack.tokens import mint_access_token
from tests.service.conftest import JWT_ISSUER, JWT_SECRET

USER = str(uuid.uuid4())
# Every token here is minted with a secret of realistic length; a short one must fail the test, not warn.
pytestmark = pytest.mark.filterwarnings("error::jwt.warnings.InsecureKeyLengthWarning")


def _rsa_keys() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def _claims(**overrides) -> dict:
    now = int(time.time())
    claims = {"iss": JWT_ISSUER, "aud": "authenticated", "sub": USER, "role": "authenticated",
              "iat": now, "exp": now + 3 * 3600}  # minted at collection; make test runs for minutes
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _unsigned(claims: dict) -> str:
    return jwt.encode(claims, key=None, algorithm="none")


def _hs256_with_key(claims: dict, key: bytes) -> str:
    """The algorithm-confusion attack: HMAC over the token with the RSA public key as the secret
    (built by hand, since PyJWT refuses to do it)."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def _api_key(role: str) -> str:
    return jwt.encode({"iss": "supabase", "ref": "project", "role": role, "iat": 0, "exp": 2**31},
                      JWT_SECRET, algorithm="HS256")


PRIVATE, PUBLIC = _rsa_keys()

BAD_AUTHORIZATION = {
    "expired": ("Bearer " + mint_access_token(JWT_SECRET, JWT_ISSUER, USER, expires_in_s=-60), "expired"),
    "wrong secret": ("Bearer " + mint_access_token("another-secret-of-sufficient-length!!", JWT_ISSUER, USER),
                     "signature"),
    "alg none": ("Bearer " + _unsigned(_claims()), "algorithm"),
    "RS256 token": ("Bearer " + jwt.encode(_claims(), PRIVATE, algorithm="RS256"), "algorithm"),
    "HS256 signed with the public key": ("Bearer " + _hs256_with_key(_claims(), PUBLIC), "signature"),
    "wrong audience": ("Bearer " + jwt.encode(_claims(aud="anon"), JWT_SECRET, "HS256"), "audience"),
    "wrong issuer": ("Bearer " + jwt.encode(_claims(iss="https://evil.example/auth/v1"), JWT_SECRET, "HS256"),
                     "issued"),
    "anon key": ("Bearer " + _api_key("anon"), "claim"),
    "service_role key": ("Bearer " + _api_key("service_role"), "claim"),
    "missing sub": ("Bearer " + jwt.encode(_claims(sub=None), JWT_SECRET, "HS256"), "'sub'"),
    "non-UUID sub": ("Bearer " + jwt.encode(_claims(sub="admin"), JWT_SECRET, "HS256"), "UUID"),
    "role not authenticated": ("Bearer " + jwt.encode(_claims(role="service_role"), JWT_SECRET, "HS256"), "role"),
    "not yet valid": ("Bearer " + jwt.encode(_claims(nbf=int(time.time()) + 2 * 3600), JWT_SECRET, "HS256"), "nbf"),
    "legacy token while disabled": (f"Bearer supabase_token_{USER}", "disabled"),
    "malformed header": ("Token abc.def.ghi", "Malformed"),
    "bearer without token": ("Bearer", "Malformed"),
    "garbage token": ("Bearer not-a-jwt", "malformed"),
    "oversize token": ("Bearer " + "a" * 10_000, "too large"),
    "no header": (None, "Missing"),
}


async def test_bad_credentials_get_401_with_a_message(service, caplog):
    """One service answers the whole matrix (starting one per case would cost seconds each)."""
    problems = []
    with caplog.at_level(logging.DEBUG):
        async with service.client() as client:
            for case, (authorization, words) in BAD_AUTHORIZATION.items():
                headers = {"Authorization": authorization} if authorization is not None else {}
                response = await client.get("/api/v1/generations", headers=headers)
                challenge = response.headers.get("WWW-Authenticate", "")
                if response.status_code != 401 or not challenge.startswith("Bearer"):
                    problems.append(f"{case}: {response.status_code} {challenge!r}")
                elif authorization is not None and 'error="' not in challenge:
                    problems.append(f"{case}: challenge without error code: {challenge!r}")
                elif words.lower() not in response.json()["detail"].lower():
                    problems.append(f"{case}: message {response.json()['detail']!r} lacks {words!r}")
    assert not problems, "\n".join(problems)
    for authorization, _ in BAD_AUTHORIZATION.values():
        token = (authorization or "").partition(" ")[2]
        for fragment in {token[:16], token[-16:], *token.split(".")}:
            assert len(fragment) < 8 or fragment not in caplog.text, "a token fragment was logged"


async def test_two_authorization_headers_are_refused_with_400(service):
    valid = f"Bearer {service.token()}"
    async with service.client() as client:
        for pair in ([valid, "Bearer not-a-jwt"], ["Bearer not-a-jwt", valid], [valid, valid]):
            response = await client.get("/api/v1/generations", headers=[("Authorization", value) for value in pair])
            assert response.status_code == 400, pair
            assert "one Authorization header" in response.json()["detail"]
        assert (await client.get("/api/v1/generations", headers={"Authorization": valid})).status_code == 200


async def test_valid_token_is_accepted_with_list_audience(service):
    token = jwt.encode(_claims(aud=["authenticated", "other"]), JWT_SECRET, "HS256")
    async with service.client(token) as client:
        response = await client.get("/api/v1/generations")
    assert response.status_code == 200
    assert response.json()["total"] == 0


async def test_legacy_tokens_only_when_enabled(start_service):
    async with start_service(legacy_tokens_enabled=True) as svc:
        async with svc.client(f"supabase_token_{USER}") as client:
            assert (await client.get("/api/v1/generations")).status_code == 200
        async with svc.client("supabase_token_not-a-uuid") as client:
            response = await client.get("/api/v1/generations")
    assert response.status_code == 401
    assert "UUID" in response.json()["detail"]
