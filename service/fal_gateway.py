"""FAL.ai through the real `fal_client.AsyncClient`: submit, status, result, cancel, and image download.

fal_client reads FAL_QUEUE_RUN_HOST / FAL_RUN_HOST at import and SSL_CERT_FILE on first use; the
process environment sets them before the service starts, and nothing here changes them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import fal_client
import httpx

from service.errors import GenerationFailed
from service.metrics import Metrics
from service.upstream import upstream_call

GENERATION_ID_HEADER = "x-genchaos-generation-id"


class FalGateway:
    """One FAL application (model) reached through one shared fal_client.AsyncClient."""

    def __init__(self, *, key: str, model_id: str, metrics: Metrics, poll_interval_s: float,
                 download_timeout_s: float) -> None:
        self.model_id = model_id
        self._client = fal_client.AsyncClient(key=key or None)
        self._metrics = metrics
        self._poll_interval_s = poll_interval_s
        self._http = httpx.AsyncClient(timeout=download_timeout_s, follow_redirects=True)

    async def close(self) -> None:
        await self._http.aclose()
        # fal_client has no close(); its lazily built httpx client lives in the instance __dict__.
        fal_http = vars(self._client).get("_client")
        if isinstance(fal_http, httpx.AsyncClient):
            await fal_http.aclose()

    async def submit(self, arguments: dict[str, Any], generation_id: str) -> str:
        """Queue a job and return its fal request id."""
        async with upstream_call(self._metrics, "fal", "submit"):
            handle = await self._client.submit(
                self.model_id, arguments, headers={GENERATION_ID_HEADER: generation_id})
        return handle.request_id

    async def status(self, request_id: str) -> fal_client.Status:
        async with upstream_call(self._metrics, "fal", "status"):
            return await self._client.status(self.model_id, request_id, with_logs=False)

    async def cancel(self, request_id: str) -> None:
        # Cancels are not in the metric's operation list; they are rare and best-effort.
        await self._client.cancel(self.model_id, request_id)

    async def wait_for_result(self, request_id: str) -> dict[str, Any]:
        """Poll until the job completes, then fetch its output; a job that ended in error is GenerationFailed."""
        while True:
            status = await self.status(request_id)
            if isinstance(status, fal_client.Completed):
                if status.error:
                    raise GenerationFailed(f"FAL job failed ({status.error_type or 'error'}): {status.error}")
                break
            await asyncio.sleep(self._poll_interval_s)
        async with upstream_call(self._metrics, "fal", "result"):
            return await self._client.result(self.model_id, request_id)

    async def download(self, url: str) -> bytes:
        """The generated image's bytes (fal's CDN, or the emulator's file route)."""
        async with upstream_call(self._metrics, "fal", "download"):
            response = await self._http.get(url)
            response.raise_for_status()
            return response.content

    async def check(self, timeout_s: float) -> None:
        """Reachability of FAL's queue host: any HTTP answer means up; transport errors mean down."""
        await self._http.get(fal_client.client.QUEUE_URL_FORMAT, timeout=timeout_s)


def image_url_from_output(output: dict[str, Any]) -> str:
    """The first image URL of a flux-style output, or GenerationFailed if there is none."""
    try:
        return output["images"][0]["url"]
    except (KeyError, IndexError, TypeError):
        raise GenerationFailed("FAL output has no image") from None
