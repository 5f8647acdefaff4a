"""Probes any service must refuse, sent beside the load.

Forged and stale tokens must be refused with 401/403 (a valid token that is refused shows in
``auth_failures``; these show the other half, a token that should not pass), and among them the
report's own ``supabase_token_<uuid>`` format, which anyone can forge for any user. And one user
must never see another's generations: a second user asks for the first users' generations by id and
in its own list, and anything but "not found" is a leak.
"""

from __future__ import annotations

import time
import uuid

import httpx

from chaos.run.observations import RequestRecord
from chaos.run.protocol import GenerationProtocol, new_trace_id
from chaos.stack.tokens import mint_access_token

EXPIRED_FOR_S = 600  # well past any clock-skew leeway
CROSS_USER_SAMPLE = 5  # accepted generations the second user asks for by id
PROBE_TIMEOUT_S = 10.0


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
        # The report's legacy format: no signature at all, so anyone can name any user.
        "legacy supabase_token_<uuid>": f"supabase_token_{uuid.uuid4()}",
    }


async def accepted_forgeries(client: httpx.AsyncClient, api: GenerationProtocol, secret: str,
                             issuer: str) -> list[str]:
    """The names of forged tokens the service did not refuse with 401 or 403."""
    accepted = []
    for name, token in forged_tokens(secret, issuer).items():
        trace_id = new_trace_id()
        try:
            response = await client.post(api.submit_path, json=api.request_body(trace_id),
                                         headers=api.headers(token, trace_id), timeout=PROBE_TIMEOUT_S)
        except httpx.HTTPError:
            continue
        if response.status_code not in (401, 403):
            accepted.append(f"{name} ({response.status_code})")
    return accepted


async def cross_user_reads(client: httpx.AsyncClient, api: GenerationProtocol, records: list[RequestRecord],
                           stranger: str) -> list[str]:
    """What a user who owns none of the load's generations got to see of them: each of a few accepted
    generations asked for by id (any answer but 404 is a leak, even a 403 that admits it exists; a 5xx or
    429 says nothing either way), and its own list (any of them listed is a leak). Empty when nothing
    leaked or nothing was accepted."""
    accepted = [r.generation_id for r in records if r.generation_id]
    if not accepted:
        return []
    step = max(1, len(accepted) // CROSS_USER_SAMPLE)
    leaks = []
    for generation_id in accepted[::step][:CROSS_USER_SAMPLE]:
        try:
            response = await client.get(api.generation_path(generation_id), timeout=PROBE_TIMEOUT_S,
                                        headers=api.headers(stranger, new_trace_id()))
        except httpx.HTTPError:
            continue
        if response.status_code != 404 and response.status_code < 500 and response.status_code != 429:
            leaks.append(f"GET another user's {generation_id}: {response.status_code}")
    if api.list_path is not None:
        try:
            response = await client.get(api.list_path, timeout=PROBE_TIMEOUT_S,
                                        headers=api.headers(stranger, new_trace_id()))
            listed = api.listed_ids(response.json()) if response.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            listed = []
        theirs = set(listed or []) & set(accepted)
        if theirs:
            leaks.append(f"the list showed {len(theirs)} of other users' generations")
    return leaks
