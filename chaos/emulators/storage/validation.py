"""Checks of bucket names, object keys, size limits and content types, as storage-api makes them."""

from __future__ import annotations

import re

from chaos.emulators.storage.errors import StorageError, invalid_key, invalid_request

_BUCKET_NAME = re.compile(r"^[\w!\-.*'() &$@=;:+,?]+$")
_SIZE_WITH_UNIT = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB)?\s*$", re.IGNORECASE)
_UNIT_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def check_bucket_name(name: str) -> str:
    if not _BUCKET_NAME.match(name) or name in (".", ".."):
        raise StorageError(400, "InvalidBucketName", "Bucket name invalid", error="Invalid Input")
    return name


def check_object_key(key: str) -> str:
    """Refuse keys storage-api refuses, and every key that could be read as a path escape."""
    segments = key.split("/")
    if (
        not key
        or key.startswith("/")
        or any(segment in (".", "..") for segment in segments)
        or any(ord(char) < 32 or char in "\\\x7f" for char in key)
    ):
        raise invalid_key(key)
    return key


def parse_size_limit(value: int | str | None) -> int | None:
    """storage-api accepts a byte count or a string such as ``"20MB"``."""
    if value is None or isinstance(value, int):
        return value
    match = _SIZE_WITH_UNIT.match(value)
    if not match:
        raise invalid_request("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")
    return int(match.group(1)) * _UNIT_BYTES[(match.group(2) or "B").upper()]


def mime_allowed(mimetype: str, allowed: list[str] | None) -> bool:
    """True if ``mimetype`` (parameters ignored) matches an entry such as ``image/png`` or ``image/*``."""
    if not allowed:
        return True
    bare = mimetype.split(";", 1)[0].strip().lower()
    for pattern in allowed:
        pattern = pattern.strip().lower()
        if pattern == bare or (pattern.endswith("/*") and bare.startswith(pattern[:-1])):
            return True
    return False
