"""Reading an upload the way storage-api's uploader does: a multipart form or a raw body."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from chaos.emulators.storage.errors import invalid_request
from chaos.emulators.storage.store import NewObject


def _metadata_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise invalid_request("metadata must be a JSON object") from None
    if not isinstance(value, dict):
        raise invalid_request("metadata must be a JSON object")
    return value


async def read_upload(request: Request, owner: str | None) -> tuple[bytes, NewObject]:
    """Read an upload the way storage-api's uploader does (multipart first file part, else raw body)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        header_metadata = request.headers.get("x-metadata")
        metadata = None
        if header_metadata:
            try:
                metadata = _metadata_json(base64.b64decode(header_metadata, validate=True).decode())
            except (binascii.Error, UnicodeDecodeError):
                raise invalid_request("x-metadata must be base64-encoded JSON") from None
        return await request.body(), NewObject(
            mimetype=content_type or "application/octet-stream",
            cache_control=request.headers.get("cache-control", "no-cache"),
            user_metadata=metadata,
            owner=owner,
        )
    form = await request.form(max_files=1000, max_fields=1000)
    try:
        fields: dict[str, str] = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                part_type = value.content_type or "application/octet-stream"
                metadata_text = fields.get("metadata") or fields.get("userMetadata")
                cache_seconds = fields.get("cacheControl")
                return await value.read(), NewObject(
                    mimetype=fields.get("contentType") or part_type,
                    cache_control=f"max-age={cache_seconds}" if cache_seconds else "no-cache",
                    user_metadata=_metadata_json(metadata_text) if metadata_text else None,
                    owner=owner,
                )
            fields.setdefault(name, value)
        raise invalid_request("No content provided")
    finally:
        await form.close()
