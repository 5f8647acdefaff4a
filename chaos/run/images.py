"""What users get: each completed generation's signed URL must serve the very image FAL produced.

The generation's FAL job is found in FAL's own request log (the last job whose result the service
fetched for that generation); its result names the image FAL made. Both images are downloaded and
compared byte for byte, so a truncated, corrupted or swapped image is a failed generation.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx

from chaos.run.observations import RequestRecord
from chaos.stack.keepalive import pool_limits

CONCURRENCY = 8
TIMEOUT_S = 10.0


def result_paths(fal_log: list[dict[str, Any]]) -> dict[str, str]:
    """Generation id -> path of the FAL result the service fetched for it (the last successful one)."""
    generation_of = {e["request_id"]: e["generation_id"] for e in fal_log
                     if e.get("kind") == "submit" and e.get("request_id") and e.get("generation_id")}
    paths: dict[str, str] = {}
    for entry in sorted(fal_log, key=lambda e: e["t"]):
        generation = generation_of.get(entry.get("request_id") or "")
        if entry.get("kind") == "result" and entry.get("status") == 200 and generation:
            paths[generation] = entry["path"]
    return paths


async def _download(client: httpx.AsyncClient, url: str, **kwargs: Any) -> bytes | None:
    try:
        response = await client.get(url, timeout=TIMEOUT_S, **kwargs)
    except httpx.HTTPError:
        return None
    return response.content if response.status_code == 200 else None


async def _fal_image(client: httpx.AsyncClient, fal_url: str, fal_key: str, path: str) -> bytes | None:
    try:
        response = await client.get(f"{fal_url}{path}", headers={"Authorization": f"Key {fal_key}"},
                                    timeout=TIMEOUT_S)
        url = response.json()["images"][0]["url"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        return None
    return await _download(client, url)


async def verify_images(records: list[RequestRecord], fal_log: list[dict[str, Any]], *, fal_url: str,
                        fal_key: str, ca_bundle: str) -> None:
    """Set ``image_ok`` on every completed record: True only when both downloads match exactly."""
    paths = result_paths(fal_log)
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca_bundle), limits=pool_limits()) as client:

        async def verify(record: RequestRecord) -> None:
            async with limit:
                path = paths.get(record.generation_id or "")
                if path is None or not record.image_url:
                    record.image_ok = False
                    return
                expected = await _fal_image(client, fal_url, fal_key, path)
                served = await _download(client, record.image_url)
                record.image_ok = expected is not None and served == expected

        await asyncio.gather(*(verify(r) for r in records if r.final_status == "completed"))
