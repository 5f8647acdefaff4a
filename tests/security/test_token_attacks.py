"""Forged and broken tokens: every one is a 401 with a clear message, and none reaches the logs."""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chaos.stack.embedded import EmbeddedStack, StackInfo
from chaos.stack.tokens import mint_access_token

# Every key used here is of realistic length; a short one must fail the test, not warn.
pytestmark = pytest.mark.filterwarnings("error::jwt.warnings.InsecureKeyLengthWarning")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_signed(alg: str, digest: str, key: bytes, payload_b64: str) -> str:
    """An HMAC token built without PyJWT, for keys PyJWT rightly refuses (an RSA public key, or the
    project secret, shorter than HS512's 64 bytes)."""
    signing_input = f"{_b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{payload_b64}"
    return f"{signing_input}.{_b64(hmac.new(key, signing_input.encode(), digest).digest())}"


def _unsigned(header: dict, payload: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}."


def _claims(info: StackInfo, **overrides) -> dict:
    now = int(time.time())
    claims = {"iss": info.jwt_issuer, "aud": "authenticated", "sub": str(uuid.uuid4()), "role": "authenticated",
              "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _rsa_key_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, public_pem


def attack_headers(info: StackInfo) -> dict[str, dict[str, str]]:
    """Name -> request headers carrying one forged or broken credential."""
    secret = info.jwt_secret
    rsa_key, rsa_public_pem = _rsa_key_pair()
    now = int(time.time())

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def signed(**overrides) -> str:
        return jwt.encode(_claims(info, **overrides), secret, algorithm="HS256")

    valid = signed()
    header_b64, payload_b64, signature = valid.split(".")
    other_payload = _b64(json.dumps(_claims(info, role="service_role")).encode())
    return {
        "alg_none": bearer(_unsigned({"alg": "none", "typ": "JWT"}, _claims(info))),
        "alg_none_uppercase": bearer(_unsigned({"alg": "NONE", "typ": "JWT"}, _claims(info))),
        "alg_none_with_signature": bearer(_unsigned({"alg": "none"}, _claims(info)) + signature),
        "hs256_signed_with_rsa_public_key": bearer(_hand_signed("HS256", "sha256", rsa_public_pem, payload_b64)),
        "rs256_token": bearer(jwt.encode(_claims(info), rsa_key, algorithm="RS256")),
        "hs512_with_the_real_secret": bearer(_hand_signed("HS512", "sha512", secret.encode(), payload_b64)),
        "wrong_secret": bearer(jwt.encode(_claims(info), "not-the-project-secret-but-long-enough!", algorithm="HS256")),
        "expired": bearer(signed(exp=now - 10, iat=now - 700)),
        "not_yet_valid": bearer(signed(nbf=now + 3600)),
        "no_exp": bearer(signed(exp=None)),
        "wrong_aud": bearer(signed(aud="anon")),
        "aud_list_without_authenticated": bearer(signed(aud=["service", "other"])),
        "wrong_iss": bearer(signed(iss="https://evil.example/auth/v1")),
        "missing_sub": bearer(signed(sub=None)),
        "non_uuid_sub": bearer(signed(sub="admin")),
        "sql_in_sub": bearer(signed(sub="' OR 1=1 --")),
        "anon_key": bearer(jwt.encode({"iss": "supabase", "role": "anon", "ref": "x", "iat": now, "exp": now + 600},
                                      secret, algorithm="HS256")),
        "service_role_key": bearer(info.service_key),
        "role_service_role_with_sub": bearer(signed(role="service_role")),
        "missing_role": bearer(signed(role=None)),
        "tampered_payload": bearer(f"{header_b64}.{other_payload}.{signature}"),
        "truncated_signature": bearer(valid[:-5]),
        "two_segments": bearer(f"{header_b64}.{payload_b64}"),
        "garbage": bearer("not-a-token"),
        "empty_bearer": {"Authorization": "Bearer"},
        "basic_scheme": {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()},
        "token_without_scheme": {"Authorization": signed()},
        "legacy_format_disabled": bearer(f"supabase_token_{uuid.uuid4()}"),
        "legacy_format_bad_uuid": bearer("supabase_token_not-a-uuid"),
        "oversize_token": bearer(signed(padding="x" * 20000)),
        "two_credentials_in_one_header": {"Authorization": f"Bearer {signed(sub='not-a-uuid')}, Bearer {valid}"},
        "trailing_garbage_after_token": {"Authorization": f"Bearer {valid} X-Injected: 1"},
        "missing_header": {},
    }


def test_at_least_25_attacks_are_tried(stack: EmbeddedStack):
    assert len(attack_headers(stack.info)) >= 25


def test_every_forged_or_broken_token_is_401_and_never_logged(stack: EmbeddedStack):
    info = stack.info
    attacks = attack_headers(info)
    accepted = {}
    for name, headers in attacks.items():
        response = httpx.get(f"{info.service_url}/api/v1/generations", headers=headers, timeout=10)
        if response.status_code != 401 or "Bearer" not in response.headers.get("WWW-Authenticate", "") \
                or not response.json().get("detail"):
            accepted[name] = (response.status_code, response.text[:200])
    assert accepted == {}

    service_log = (stack.log_dir / "service.log").read_text(errors="replace")
    for name, headers in attacks.items():
        credential = headers.get("Authorization", "").removeprefix("Bearer ").strip()
        for piece in credential.split("."):
            if len(piece) >= 16:
                assert piece not in service_log, f"part of the {name} credential was logged"


def test_a_valid_token_is_accepted(stack: EmbeddedStack):
    """The control case: without it, a service that rejects everything would pass the test above."""
    token = mint_access_token(stack.info.jwt_secret, stack.info.jwt_issuer)
    response = httpx.get(f"{stack.info.service_url}/api/v1/generations", timeout=10,
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_legacy_token_accepted_only_when_enabled(stack: EmbeddedStack):
    info = stack.restart_service(env={"GENCHAOS_LEGACY_TOKENS_ENABLED": "true"})
    try:
        ok = httpx.get(f"{info.service_url}/api/v1/generations", timeout=10,
                       headers={"Authorization": f"Bearer supabase_token_{uuid.uuid4()}"})
        bad = httpx.get(f"{info.service_url}/api/v1/generations", timeout=10,
                        headers={"Authorization": "Bearer supabase_token_not-a-uuid"})
        assert (ok.status_code, bad.status_code) == (200, 401)
    finally:
        stack.restart_service(env={})


def test_two_authorization_headers_are_refused_with_400(stack: EmbeddedStack):
    """Proxies and frameworks disagree on which of two headers wins, so neither does."""
    valid = f"Bearer {mint_access_token(stack.info.jwt_secret, stack.info.jwt_issuer)}"
    for pair in ([valid, "Bearer forged"], ["Bearer forged", valid]):
        response = httpx.get(f"{stack.info.service_url}/api/v1/generations", timeout=10,
                             headers=[("Authorization", value) for value in pair])
        assert response.status_code == 400, pair
        assert "one Authorization header" in response.json()["detail"]


def test_a_token_sent_in_the_query_string_reaches_neither_log_nor_trace(stack: EmbeddedStack):
    info = stack.info
    token = mint_access_token(info.jwt_secret, info.jwt_issuer)
    for name in ("access_token", "token", "apikey", "key"):
        response = httpx.get(f"{info.service_url}/api/v1/generations", params={name: token, "limit": 3}, timeout=10)
        assert response.status_code == 401  # the service never reads credentials from the URL
    signature = token.rsplit(".", 1)[1]
    time.sleep(1.5)  # the trace file is written in batches every 0.5 s
    assert "access_token=REDACTED" in (stack.log_dir / "service.log").read_text(errors="replace")
    assert signature not in (stack.log_dir / "service.log").read_text(errors="replace")
    traces = Path(info.traces_file).read_text(errors="replace")
    assert "access_token=REDACTED" in traces  # the request was traced, with its URL redacted
    assert signature not in traces
