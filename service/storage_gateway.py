"""Supabase Storage through the real async `supabase` client: private bucket, upload, signed URLs."""

from __future__ import annotations

import math

from storage3.exceptions import StorageApiError
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from service.metrics import Metrics
from service.upstream import upstream_call


def object_path(user_id: str, generation_id: str) -> str:
    return f"{user_id}/{generation_id}.png"


class StorageGateway:
    """One private bucket of one Supabase project, used with the service key."""

    def __init__(self, client: AsyncClient, bucket: str, metrics: Metrics, signed_url_expires_s: int) -> None:
        self._client = client
        self.bucket = bucket
        self._metrics = metrics
        self._signed_url_expires_s = signed_url_expires_s
        self._bucket_ready = False

    @classmethod
    async def create(cls, *, url: str, service_key: str, bucket: str, metrics: Metrics, timeout_s: float,
                     signed_url_expires_s: int) -> StorageGateway:
        """Build the client (no network call happens here)."""
        options = AsyncClientOptions(storage_client_timeout=max(1, math.ceil(timeout_s)))
        client = await acreate_client(url, service_key, options=options)
        return cls(client, bucket, metrics, signed_url_expires_s)

    async def close(self) -> None:
        await self._client.storage.session.aclose()

    async def ensure_bucket(self) -> None:
        """Create the private bucket unless it exists; remembered once it succeeded."""
        if self._bucket_ready:
            return
        try:
            await self._client.storage.create_bucket(self.bucket, options={"public": False})
        except StorageApiError as error:
            if str(error.status) != "409":
                raise
        self._bucket_ready = True

    async def upload_png(self, path: str, data: bytes) -> None:
        await self.ensure_bucket()
        async with upstream_call(self._metrics, "storage", "upload"):
            await self._client.storage.from_(self.bucket).upload(
                path, data, file_options={"content-type": "image/png", "upsert": "true"})

    async def remove(self, path: str) -> None:
        """Delete one object; removing one that does not exist is not an error."""
        async with upstream_call(self._metrics, "storage", "remove"):
            await self._client.storage.from_(self.bucket).remove([path])

    async def signed_url(self, path: str) -> str:
        async with upstream_call(self._metrics, "storage", "sign"):
            signed = await self._client.storage.from_(self.bucket).create_signed_url(
                path, self._signed_url_expires_s)
        return signed["signedURL"]

    async def check(self) -> None:
        """A cheap authenticated call: reading the bucket proves storage answers and accepts our key."""
        async with upstream_call(self._metrics, "storage", "check"):
            if self._bucket_ready:
                await self._client.storage.get_bucket(self.bucket)
            else:
                await self.ensure_bucket()
