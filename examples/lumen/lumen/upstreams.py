"""FAL (through fal_client.AsyncClient) and Supabase Storage (through the async supabase client).

fal_client takes its key and hosts from FAL_KEY / FAL_QUEUE_RUN_HOST / FAL_RUN_HOST; httpx (used by
both libraries and by the image download here) trusts the CA bundle named by SSL_CERT_FILE.
"""

from __future__ import annotations

import asyncio
import math
import os
from typing import Any

import fal_client
import httpx
from storage3.exceptions import StorageApiError
from supabase import AsyncClient, AsyncClientOptions, acreate_client

POLL_INTERVAL_S = 0.25
SIGNED_URL_TTL_S = 24 * 3600


class FalError(Exception):
    """FAL answered, but the job did not produce an image."""


class Fal:
    def __init__(self, check_timeout_s: float) -> None:
        self.client = fal_client.AsyncClient()
        self.http = httpx.AsyncClient(follow_redirects=True, timeout=30.0)
        self.check_timeout_s = check_timeout_s
        self.queue_url = "https://" + os.environ.get("FAL_QUEUE_RUN_HOST", "queue.fal.run") + "/"

    async def close(self) -> None:
        await self.http.aclose()

    async def reachable(self) -> None:
        """Raise unless the FAL queue host answers HTTP at all (any status counts: no job is submitted)."""
        await self.http.get(self.queue_url, timeout=self.check_timeout_s)

    async def generate(self, model: str, prompt: str) -> str:
        """Submit, poll until completed, fetch the result: the URL of the first image."""
        handle = await self.client.submit(model, arguments={"prompt": prompt})
        while True:
            status = await self.client.status(model, handle.request_id, with_logs=False)
            if isinstance(status, fal_client.Completed):
                if status.error:
                    raise FalError(f"FAL job failed: {status.error}")
                break
            await asyncio.sleep(POLL_INTERVAL_S)
        result: Any = await self.client.result(model, handle.request_id)
        try:
            return result["images"][0]["url"]
        except (KeyError, IndexError, TypeError):
            raise FalError("FAL result has no image") from None

    async def download(self, url: str) -> bytes:
        response = await self.http.get(url)
        response.raise_for_status()
        return response.content


class Storage:
    def __init__(self, client: AsyncClient, bucket: str, timeout_s: float) -> None:
        self.client = client
        self.bucket = bucket
        self.timeout_s = timeout_s
        self.bucket_ready = False

    @classmethod
    async def connect(cls, url: str, key: str, bucket: str, timeout_s: float) -> Storage:
        options = AsyncClientOptions(storage_client_timeout=max(1, math.ceil(timeout_s)))
        return cls(await acreate_client(url, key, options=options), bucket, timeout_s)

    async def close(self) -> None:
        await self.client.storage.session.aclose()

    async def _within(self, awaitable: Any) -> Any:
        return await asyncio.wait_for(awaitable, self.timeout_s)

    async def ensure_bucket(self) -> None:
        """Create the private bucket unless it already exists."""
        if self.bucket_ready:
            return
        try:
            await self._within(self.client.storage.create_bucket(self.bucket, options={"public": False}))
        except StorageApiError as error:
            if str(error.status) != "409":
                raise
        self.bucket_ready = True

    async def check(self) -> None:
        await self._within(self.client.storage.get_bucket(self.bucket))

    async def put_png(self, path: str, data: bytes) -> str:
        """Upload (overwriting) and return a signed URL valid for a day."""
        await self.ensure_bucket()
        files = self.client.storage.from_(self.bucket)
        await self._within(files.upload(path, data, file_options={"content-type": "image/png", "upsert": "true"}))
        signed = await self._within(files.create_signed_url(path, SIGNED_URL_TTL_S))
        return signed["signedURL"]
