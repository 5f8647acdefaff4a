"""Serving object bytes: storage-api's asset headers, ``?download=`` and single byte ranges."""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from chaos.emulators.storage.errors import StorageError

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte of a single ``Range`` header, None to send everything."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None  # multi-range and other forms: serve the whole object, as HTTP allows
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise StorageError(400, "InvalidRange", "invalid range provided", error="invalid_range", http_status=416)
    return start, end


def object_response(request: Request, row: dict[str, Any], data: bytes) -> Response:
    """The object's bytes with the headers storage-api's asset renderer sends, honouring ``Range``."""
    metadata = row["metadata"]
    updated = datetime.fromisoformat(row["updated_at"].replace("Z", "+00:00"))
    headers = {
        "Cache-Control": metadata["cacheControl"],
        "ETag": metadata["eTag"],
        "Last-Modified": format_datetime(updated, usegmt=True),
        "Accept-Ranges": "bytes",
    }
    if "download" in request.query_params:
        filename = request.query_params["download"] or row["name"].rsplit("/", 1)[-1]
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    try:
        span = byte_range(request.headers.get("range"), len(data))
    except StorageError as exc:
        response = exc.response()
        response.headers["Content-Range"] = f"bytes */{len(data)}"
        return response
    if span is None:
        return Response(data, media_type=metadata["mimetype"], headers=headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    return Response(data[start:end + 1], status_code=206, media_type=metadata["mimetype"], headers=headers)
