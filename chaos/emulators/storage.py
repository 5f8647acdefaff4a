"""Supabase Storage emulator: the storage-api REST subset that `supabase` / `storage3` speak.

It serves plain HTTP under ``/storage/v1/`` with storage-api's routes, bodies and error
shapes (including its habit of answering HTTP 400 for errors whose body says 404 or 409),
checks the gateway's ``apikey`` and the bearer token like the hosted stack does, and keeps
a request log behind the emulator admin API (``/_emulator/...``) described in
``docs/architecture.md``.

Object bytes live under ``DATA_DIR/objects/`` in files named by a random version id, and
the bucket and object rows in ``DATA_DIR/metadata.sqlite3``. Object keys are only ever
database values, never file names, so no key can reach outside the data directory; keys
with ``.``/``..`` segments are still refused with storage-api's ``InvalidKey`` error.

Run it with ``python -m chaos.emulators.storage --host H --port P --data-dir D
--service-key K --jwt-secret S``, or build the ASGI app with ``create_app``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import contextlib
import hashlib
import json
import re
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import jwt
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

API_PREFIX = "/storage/v1"
REQUEST_LOG_LIMIT = 100_000  # oldest entries are dropped beyond this, to bound memory in long load runs
CALLER_ROLES = ("service_role", "authenticated")  # roles allowed to act on storage


# --------------------------------------------------------------------------------------
# Errors in storage-api's and the gateway's shapes
# --------------------------------------------------------------------------------------


class StorageError(Exception):
    """An error storage-api renders as ``{statusCode, code, error, message}``.

    ``status_code`` is storage-api's internal status, which only goes into the body; the HTTP
    status is 400 unless the internal status is 500, or ``http_status`` overrides it.
    """

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        error: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.error = error or code
        self.http_status = http_status or (500 if status_code == 500 else 400)

    def response(self) -> JSONResponse:
        body = {
            "statusCode": str(self.status_code),
            "code": self.code,
            "error": self.error,
            "message": self.message,
        }
        return JSONResponse(body, status_code=self.http_status)


class GatewayAuthError(Exception):
    """The API gateway's refusal of a missing or unknown ``apikey`` (plain 401, not storage-api's shape)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", error="not_found")


def no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", error="Bucket not found")


def key_already_exists() -> StorageError:
    return StorageError(409, "KeyAlreadyExists", "The resource already exists", error="Duplicate")


def bucket_already_exists() -> StorageError:
    return StorageError(409, "BucketAlreadyExists", "The resource already exists", error="Duplicate")


def invalid_key(key: str) -> StorageError:
    return StorageError(400, "InvalidKey", f"Invalid key: {key}")


def invalid_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message)


def access_denied(message: str) -> StorageError:
    return StorageError(403, "AccessDenied", message, error="Unauthorized", http_status=403)


def invalid_jwt(message: str) -> StorageError:
    return StorageError(400, "InvalidJWT", message)


# --------------------------------------------------------------------------------------
# Validation of names, sizes and content types
# --------------------------------------------------------------------------------------

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


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------
# The filesystem-backed store
# --------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    public INTEGER NOT NULL,
    file_size_limit INTEGER,
    allowed_mime_types TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    id TEXT PRIMARY KEY,
    bucket_id TEXT NOT NULL REFERENCES buckets(id),
    name TEXT NOT NULL,
    owner TEXT,
    version TEXT NOT NULL,
    size INTEGER NOT NULL,
    mimetype TEXT NOT NULL,
    cache_control TEXT NOT NULL,
    etag TEXT NOT NULL,
    user_metadata TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_accessed_at TEXT NOT NULL,
    UNIQUE (bucket_id, name)
);
"""


@dataclass(frozen=True)
class NewObject:
    """What an upload carries besides its bytes."""

    mimetype: str
    cache_control: str
    user_metadata: dict[str, Any] | None
    owner: str | None


class ObjectStore:
    """Buckets and objects on disk; every method is atomic and safe to call from many threads.

    Each write goes to a fresh file named by a new version id before the row that points at it
    is committed, so a reader never sees half an object, and a replaced version's file is only
    removed after its row stopped pointing at it.
    """

    def __init__(self, data_dir: Path) -> None:
        self._blobs = data_dir / "objects"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(data_dir / "metadata.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # buckets

    def create_bucket(
        self, bucket_id: str, name: str, owner: str, public: bool, size_limit: int | None, mimes: list[str] | None
    ) -> None:
        now = utc_now_iso()
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO buckets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (bucket_id, name, owner, int(public), size_limit, _json_or_none(mimes), now, now),
                )
            except sqlite3.IntegrityError:
                raise bucket_already_exists() from None

    def list_buckets(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM buckets ORDER BY name").fetchall()
        return [_bucket_json(row) for row in rows]

    def get_bucket(self, bucket_id: str) -> dict[str, Any]:
        with self._lock:
            return _bucket_json(self._bucket_row(bucket_id))

    def update_bucket(self, bucket_id: str, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (keys among public, file_size_limit, allowed_mime_types)."""
        columns = {"public": int, "file_size_limit": lambda v: v, "allowed_mime_types": _json_or_none}
        assignments = [(f"{key} = ?", columns[key](value)) for key, value in changes.items()]
        with self._lock:
            self._bucket_row(bucket_id)
            for assignment, value in assignments:
                self._db.execute(f"UPDATE buckets SET {assignment} WHERE id = ?", (value, bucket_id))
            self._db.execute("UPDATE buckets SET updated_at = ? WHERE id = ?", (utc_now_iso(), bucket_id))

    def empty_bucket(self, bucket_id: str) -> None:
        with self._lock:
            self._bucket_row(bucket_id)
            rows = self._db.execute("SELECT version FROM objects WHERE bucket_id = ?", (bucket_id,)).fetchall()
            self._db.execute("DELETE FROM objects WHERE bucket_id = ?", (bucket_id,))
        for row in rows:
            self._blob(row["version"]).unlink(missing_ok=True)

    def delete_bucket(self, bucket_id: str) -> None:
        with self._lock:
            self._bucket_row(bucket_id)
            if self._db.execute("SELECT 1 FROM objects WHERE bucket_id = ? LIMIT 1", (bucket_id,)).fetchone():
                raise StorageError(409, "ResourceNotEmpty", "The bucket you tried to delete is not empty")
            self._db.execute("DELETE FROM buckets WHERE id = ?", (bucket_id,))

    # objects

    def put_object(
        self, bucket_id: str, key: str, data: bytes, new: NewObject, mode: Literal["create", "upsert", "update"]
    ) -> dict[str, Any]:
        """Store ``data`` at ``key``: ``create`` refuses an existing key, ``update`` a missing one."""
        version = self._write_blob(data)
        now = utc_now_iso()
        etag = f'"{hashlib.md5(data).hexdigest()}"'
        replaced: str | None = None
        try:
            with self._lock:
                bucket = self._bucket_row(bucket_id)
                _check_bucket_limits(bucket, len(data), new.mimetype)
                existing = self._object_row(bucket_id, key, required=False)
                if existing is not None and mode == "create":
                    raise key_already_exists()
                if existing is None and mode == "update":
                    raise no_such_key()
                metadata = _json_or_none(new.user_metadata)
                if existing is None:
                    self._db.execute(
                        "INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (str(uuid.uuid4()), bucket_id, key, new.owner, version, len(data), new.mimetype,
                         new.cache_control, etag, metadata, now, now, now),
                    )
                else:
                    replaced = existing["version"]
                    self._db.execute(
                        "UPDATE objects SET owner = ?, version = ?, size = ?, mimetype = ?, cache_control = ?,"
                        " etag = ?, user_metadata = ?, updated_at = ?, last_accessed_at = ? WHERE id = ?",
                        (new.owner, version, len(data), new.mimetype, new.cache_control, etag, metadata,
                         now, now, existing["id"]),
                    )
                row = self._object_row(bucket_id, key)
        except BaseException:
            self._blob(version).unlink(missing_ok=True)
            raise
        if replaced:
            self._blob(replaced).unlink(missing_ok=True)
        return _object_json(row)

    def get_object(self, bucket_id: str, key: str) -> tuple[dict[str, Any], bytes]:
        """The object's row and bytes, read under the lock so a concurrent overwrite cannot tear them."""
        with self._lock:
            self._bucket_row(bucket_id)
            row = self._object_row(bucket_id, key)
            data = self._blob(row["version"]).read_bytes()
        return _object_json(row), data

    def object_info(self, bucket_id: str, key: str) -> dict[str, Any]:
        with self._lock:
            self._bucket_row(bucket_id)
            return _object_json(self._object_row(bucket_id, key))

    def list_objects(self, bucket_id: str, prefix: str) -> list[sqlite3.Row]:
        """Rows of every object whose key starts with ``prefix``."""
        with self._lock:
            self._bucket_row(bucket_id)
            return self._db.execute(
                "SELECT * FROM objects WHERE bucket_id = ? AND substr(name, 1, ?) = ?",
                (bucket_id, len(prefix), prefix),
            ).fetchall()

    def remove_objects(self, bucket_id: str, keys: list[str]) -> list[dict[str, Any]]:
        """Delete the objects named exactly by ``keys``; returns the rows that existed."""
        with self._lock:
            rows = [
                row for key in dict.fromkeys(keys) if (row := self._object_row(bucket_id, key, required=False))
            ]
            self._db.executemany("DELETE FROM objects WHERE id = ?", [(row["id"],) for row in rows])
        for row in rows:
            self._blob(row["version"]).unlink(missing_ok=True)
        return [_object_json(row) for row in rows]

    def move_object(self, bucket_id: str, source: str, target_bucket: str, target: str) -> None:
        with self._lock:
            self._bucket_row(bucket_id)
            self._bucket_row(target_bucket)
            row = self._object_row(bucket_id, source)
            if self._object_row(target_bucket, target, required=False) is not None:
                raise key_already_exists()
            self._db.execute(
                "UPDATE objects SET bucket_id = ?, name = ?, updated_at = ? WHERE id = ?",
                (target_bucket, target, utc_now_iso(), row["id"]),
            )

    def copy_object(
        self, bucket_id: str, source: str, target_bucket: str, target: str, upsert: bool, owner: str | None
    ) -> dict[str, Any]:
        row, data = self.get_object(bucket_id, source)
        new = NewObject(row["metadata"]["mimetype"], row["metadata"]["cacheControl"], row["user_metadata"], owner)
        return self.put_object(target_bucket, target, data, new, "upsert" if upsert else "create")

    # helpers (callers hold the lock)

    def _bucket_row(self, bucket_id: str) -> sqlite3.Row:
        row = self._db.execute("SELECT * FROM buckets WHERE id = ?", (bucket_id,)).fetchone()
        if row is None:
            raise no_such_bucket()
        return row

    def _object_row(self, bucket_id: str, key: str, required: bool = True) -> sqlite3.Row | None:
        row = self._db.execute(
            "SELECT * FROM objects WHERE bucket_id = ? AND name = ?", (bucket_id, key)
        ).fetchone()
        if row is None and required:
            raise no_such_key()
        return row

    def _blob(self, version: str) -> Path:
        return self._blobs / version

    def _write_blob(self, data: bytes) -> str:
        version = str(uuid.uuid4())
        partial = self._blobs / f"{version}.partial"
        partial.write_bytes(data)
        partial.replace(self._blob(version))
        return version


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _check_bucket_limits(bucket: sqlite3.Row, size: int, mimetype: str) -> None:
    limit = bucket["file_size_limit"]
    if limit is not None and size > limit:
        raise StorageError(413, "EntityTooLarge", "The object exceeded the maximum allowed size",
                           error="Payload too large")
    allowed = json.loads(bucket["allowed_mime_types"]) if bucket["allowed_mime_types"] else None
    if not mime_allowed(mimetype, allowed):
        raise StorageError(415, "InvalidMimeType", f"mime type {mimetype} is not supported",
                           error="invalid_mime_type")


def _bucket_json(row: sqlite3.Row) -> dict[str, Any]:
    """A bucket row with every field storage3's ``BaseBucket`` requires."""
    return {
        "id": row["id"],
        "name": row["name"],
        "owner": row["owner"],
        "public": bool(row["public"]),
        "type": "STANDARD",
        "file_size_limit": row["file_size_limit"],
        "allowed_mime_types": json.loads(row["allowed_mime_types"]) if row["allowed_mime_types"] else None,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _object_json(row: sqlite3.Row) -> dict[str, Any]:
    """storage-api's ``objectSchema`` row."""
    return {
        "name": row["name"],
        "bucket_id": row["bucket_id"],
        "owner": row["owner"],
        "owner_id": row["owner"],
        "version": row["version"],
        "id": row["id"],
        "updated_at": row["updated_at"],
        "created_at": row["created_at"],
        "last_accessed_at": row["last_accessed_at"],
        "metadata": {
            "eTag": row["etag"],
            "size": row["size"],
            "mimetype": row["mimetype"],
            "cacheControl": row["cache_control"],
            "lastModified": row["updated_at"],
            "contentLength": row["size"],
            "httpStatusCode": 200,
        },
        "user_metadata": json.loads(row["user_metadata"]) if row["user_metadata"] else None,
    }


# --------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------

def list_level(
    rows: list[sqlite3.Row], prefix: str, search: str, column: str, descending: bool
) -> list[dict[str, Any]]:
    """One folder level below ``prefix``, as storage-api's ``search`` function returns it.

    Objects directly under the prefix are files; deeper ones collapse into folder entries whose
    id, timestamps and metadata are null. Null timestamps sort last ascending, first descending.
    """
    folders: set[str] = set()
    files: list[dict[str, Any]] = []
    for row in rows:
        relative = row["name"][len(prefix):]
        if not relative.lower().startswith(search.lower()):
            continue
        head, slash, _ = relative.partition("/")
        if slash:
            folders.add(head)
            continue
        obj = _object_json(row)
        files.append({key: obj[key] for key in ("id", "updated_at", "created_at", "last_accessed_at", "metadata")}
                     | {"name": relative})
    folder_entries = [
        {"name": name, "id": None, "updated_at": None, "created_at": None, "last_accessed_at": None, "metadata": None}
        for name in folders
    ]
    if column == "name":
        return sorted(folder_entries + files, key=lambda entry: entry["name"], reverse=descending)
    files.sort(key=lambda entry: (entry[column], entry["name"]), reverse=descending)
    folder_entries.sort(key=lambda entry: entry["name"], reverse=descending)
    return folder_entries + files if descending else files + folder_entries


# --------------------------------------------------------------------------------------
# Request bodies
# --------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BucketCreate(_Body):
    name: str = Field(min_length=1)
    id: str | None = None
    public: bool = False
    file_size_limit: int | str | None = None
    allowed_mime_types: list[str] | None = None


class BucketUpdate(_Body):
    public: bool | None = None
    file_size_limit: int | str | None = None
    allowed_mime_types: list[str] | None = None


class SignRequest(_Body):
    expiresIn: int = Field(ge=1)


class SignManyRequest(_Body):
    expiresIn: int = Field(ge=1)
    paths: list[str] = Field(min_length=1)


class SortBy(_Body):
    column: Literal["name", "created_at", "updated_at", "last_accessed_at"] = "name"
    order: Literal["asc", "desc", "ASC", "DESC"] = "asc"


class ListRequest(_Body):
    prefix: str
    limit: int = Field(default=100, ge=1)
    offset: int = Field(default=0, ge=0)
    sortBy: SortBy = SortBy()
    search: str = ""


class RemoveRequest(_Body):
    prefixes: list[str] = Field(min_length=1)


class MoveOrCopyRequest(_Body):
    bucketId: str
    sourceKey: str
    destinationKey: str
    destinationBucket: str | None = None


# --------------------------------------------------------------------------------------
# Auth
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    role: str
    user_id: str | None  # the token's ``sub`` for signed-in users


class Authenticator:
    """Checks the gateway's ``apikey`` and storage-api's bearer token."""

    _JOSE_MESSAGES = {
        jwt.ExpiredSignatureError: '"exp" claim timestamp check failed',
        jwt.InvalidSignatureError: "signature verification failed",
        jwt.DecodeError: "Invalid Compact JWS",
    }

    def __init__(self, service_key: str, jwt_secret: str) -> None:
        self.service_key = service_key
        self.jwt_secret = jwt_secret

    def __call__(self, request: Request) -> Caller:
        apikey = request.headers.get("apikey")
        if not apikey:
            raise GatewayAuthError("No API key found in request")
        if apikey != self.service_key and self._claims_or_none(apikey) is None:
            raise GatewayAuthError("Invalid API key")
        authorization = request.headers.get("authorization")
        if authorization is None:
            token = apikey
        else:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise access_denied("Invalid Compact JWS")
            token = token.strip()
        if token == self.service_key:
            return Caller("service_role", None)
        claims = self.decode(token, error=access_denied)
        if claims.get("role") not in CALLER_ROLES:
            raise access_denied(f"role {claims.get('role')!r} may not use storage")
        return Caller(claims["role"], claims.get("sub"))

    def decode(self, token: str, error: Callable[[str], StorageError]) -> dict[str, Any]:
        """Verify an HS256 token signed with the project secret, mapping failures to ``error``."""
        try:
            return jwt.decode(token, self.jwt_secret, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.PyJWTError as exc:
            message = next((text for kind, text in self._JOSE_MESSAGES.items() if isinstance(exc, kind)), str(exc))
            raise error(message) from None

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def _claims_or_none(self, token: str) -> dict[str, Any] | None:
        try:
            claims = self.decode(token, error=access_denied)
        except StorageError:
            return None
        return claims if "role" in claims else None


# --------------------------------------------------------------------------------------
# Request log
# --------------------------------------------------------------------------------------


def request_kind(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Tag a route handler with the request-log kind it serves."""

    def tag(handler: Callable[..., Any]) -> Callable[..., Any]:
        handler.request_kind = kind  # type: ignore[attr-defined]
        return handler

    return tag


class RequestLog:
    """Every protocol request, oldest first, as ``GET /_emulator/requests`` reports them."""

    def __init__(self) -> None:
        self._entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG_LIMIT)
        self._lock = threading.Lock()

    def add(self, method: str, path: str, status: int, kind: str) -> None:
        entry = {"t": time.time(), "method": method, "path": path, "status": status, "request_id": None, "kind": kind}
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class RequestLogMiddleware:
    """Records each response to a protocol route (everything outside ``/_emulator/``)."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def remember_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            kind = getattr(scope.get("endpoint"), "request_kind", "other")
            self.log.add(scope["method"], scope["path"], status, kind)


# --------------------------------------------------------------------------------------
# Serving object bytes
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# Uploads
# --------------------------------------------------------------------------------------


def _metadata_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
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


# --------------------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------------------


def create_app(data_dir: Path, service_key: str, jwt_secret: str) -> FastAPI:
    """The emulator as an ASGI app storing its data under ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = ObjectStore(data_dir)
    auth = Authenticator(service_key, jwt_secret)
    log = RequestLog()
    caller_dependency = Depends(auth)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(
        title="Supabase Storage emulator", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.add_middleware(RequestLogMiddleware, log=log)
    install_error_handlers(app)

    protected = APIRouter(prefix=API_PREFIX, dependencies=[caller_dependency])
    public = APIRouter(prefix=API_PREFIX)

    # buckets

    @protected.get("/bucket")
    @request_kind("bucket")
    async def list_buckets() -> list[dict[str, Any]]:
        return await run_in_threadpool(store.list_buckets)

    @protected.get("/bucket/{bucket_id}")
    @request_kind("bucket")
    async def get_bucket(bucket_id: str) -> dict[str, Any]:
        return await run_in_threadpool(store.get_bucket, bucket_id)

    @protected.post("/bucket")
    @request_kind("bucket")
    async def create_bucket(body: BucketCreate, caller: Caller = caller_dependency) -> dict[str, Any]:
        bucket_id = check_bucket_name(body.id or body.name)
        await run_in_threadpool(
            store.create_bucket, bucket_id, body.name, caller.user_id or "", body.public,
            parse_size_limit(body.file_size_limit), body.allowed_mime_types,
        )
        return {"name": bucket_id}

    @protected.put("/bucket/{bucket_id}")
    @request_kind("bucket")
    async def update_bucket(bucket_id: str, body: BucketUpdate) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        if "file_size_limit" in changes:
            changes["file_size_limit"] = parse_size_limit(changes["file_size_limit"])
        await run_in_threadpool(store.update_bucket, bucket_id, changes)
        return {"message": "Successfully updated"}

    @protected.post("/bucket/{bucket_id}/empty")
    @request_kind("bucket")
    async def empty_bucket(bucket_id: str) -> dict[str, Any]:
        await run_in_threadpool(store.empty_bucket, bucket_id)
        return {"message": "Successfully emptied"}

    @protected.delete("/bucket/{bucket_id}")
    @request_kind("bucket")
    async def delete_bucket(bucket_id: str) -> dict[str, Any]:
        await run_in_threadpool(store.delete_bucket, bucket_id)
        return {"message": "Successfully deleted"}

    # signing and signed/public reads (declared before the catch-all object routes)

    def signed_path(bucket: str, key: str, expires_in: int) -> str:
        """The path storage3 joins onto ``/storage/v1/``: percent-encoded, as the client sent it."""
        now = int(time.time())
        token = auth.sign({"url": f"{bucket}/{key}", "iat": now, "exp": now + expires_in})
        return f"/object/sign/{quote(bucket)}/{quote(key)}?token={token}"

    @protected.post("/object/sign/{bucket}/{key:path}")
    @request_kind("sign")
    async def sign_object(bucket: str, key: str, body: SignRequest) -> dict[str, Any]:
        await run_in_threadpool(store.object_info, bucket, check_object_key(key))
        return {"signedURL": signed_path(bucket, key, body.expiresIn)}

    @protected.post("/object/sign/{bucket}")
    @request_kind("sign")
    async def sign_objects(bucket: str, body: SignManyRequest) -> list[dict[str, Any]]:
        results = []
        for key in body.paths:
            try:
                await run_in_threadpool(store.object_info, bucket, check_object_key(key))
            except StorageError as exc:
                if exc.code == "NoSuchBucket":
                    raise
                results.append({"error": "Either the object does not exist or you do not have access to it",
                                "path": key, "signedURL": None})
            else:
                results.append({"error": None, "path": key, "signedURL": signed_path(bucket, key, body.expiresIn)})
        return results

    @public.get("/object/sign/{bucket}/{key:path}")
    @request_kind("signed_get")
    async def get_signed_object(request: Request, bucket: str, key: str) -> Response:
        token = request.query_params.get("token")
        if not token:
            raise StorageError(400, "InvalidRequest", "querystring must have required property 'token'",
                               error="Bad Request")
        claims = auth.decode(token, error=invalid_jwt)
        if claims.get("url") != f"{bucket}/{key}" or claims.get("scope", "download") != "download":
            raise StorageError(400, "InvalidSignature", "The url do not match the signature")
        row, data = await run_in_threadpool(store.get_object, bucket, key)
        return object_response(request, row, data)

    @public.get("/object/public/{bucket}/{key:path}")
    @request_kind("download")
    async def get_public_object(request: Request, bucket: str, key: str) -> Response:
        bucket_row = await run_in_threadpool(store.get_bucket, bucket)
        if not bucket_row["public"]:
            raise no_such_bucket()
        row, data = await run_in_threadpool(store.get_object, bucket, check_object_key(key))
        return object_response(request, row, data)

    # listing, info, move and copy

    @protected.post("/object/list/{bucket}")
    @request_kind("list")
    async def list_objects(bucket: str, body: ListRequest) -> list[dict[str, Any]]:
        prefix = body.prefix.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        rows = await run_in_threadpool(store.list_objects, bucket, prefix)
        entries = list_level(rows, prefix, body.search, body.sortBy.column, body.sortBy.order.lower() == "desc")
        return entries[body.offset:body.offset + body.limit]

    @protected.get("/object/info/{bucket}/{key:path}")
    @request_kind("other")
    async def object_info(bucket: str, key: str) -> dict[str, Any]:
        return await run_in_threadpool(store.object_info, bucket, check_object_key(key))

    @protected.post("/object/move")
    @request_kind("other")
    async def move_object(body: MoveOrCopyRequest) -> dict[str, Any]:
        await run_in_threadpool(
            store.move_object, body.bucketId, check_object_key(body.sourceKey),
            body.destinationBucket or body.bucketId, check_object_key(body.destinationKey),
        )
        return {"message": "Successfully moved"}

    @protected.post("/object/copy")
    @request_kind("other")
    async def copy_object(request: Request, body: MoveOrCopyRequest, caller: Caller = caller_dependency) -> dict:
        target_bucket = body.destinationBucket or body.bucketId
        row = await run_in_threadpool(
            store.copy_object, body.bucketId, check_object_key(body.sourceKey), target_bucket,
            check_object_key(body.destinationKey), request.headers.get("x-upsert") == "true", caller.user_id,
        )
        return {"Id": row["id"], "Key": f"{target_bucket}/{row['name']}", **row}

    # authenticated reads, uploads and removal

    async def download(bucket: str, key: str, request: Request) -> Response:
        row, data = await run_in_threadpool(store.get_object, bucket, check_object_key(key))
        return object_response(request, row, data)

    @protected.get("/object/authenticated/{bucket}/{key:path}")
    @request_kind("download")
    async def get_authenticated_object(request: Request, bucket: str, key: str) -> Response:
        return await download(bucket, key, request)

    @protected.get("/object/{bucket}/{key:path}")
    @request_kind("download")
    async def get_object(request: Request, bucket: str, key: str) -> Response:
        return await download(bucket, key, request)

    async def store_upload(
        request: Request, bucket: str, key: str, caller: Caller, mode: Literal["create", "upsert", "update"]
    ) -> dict[str, Any]:
        check_object_key(key)
        data, new = await read_upload(request, caller.user_id)
        return await run_in_threadpool(store.put_object, bucket, key, data, new, mode)

    @protected.post("/object/{bucket}/{key:path}")
    @request_kind("upload")
    async def upload_object(request: Request, bucket: str, key: str, caller: Caller = caller_dependency) -> dict:
        mode = "upsert" if request.headers.get("x-upsert") == "true" else "create"
        row = await store_upload(request, bucket, key, caller, mode)
        return {"Key": f"{bucket}/{key}", "id": row["id"]}

    @protected.put("/object/{bucket}/{key:path}")
    @request_kind("upload")
    async def update_object(request: Request, bucket: str, key: str, caller: Caller = caller_dependency) -> dict:
        row = await store_upload(request, bucket, key, caller, "update")
        return {"Id": row["id"], "Key": f"{bucket}/{key}"}

    @protected.delete("/object/{bucket}")
    @request_kind("remove")
    async def remove_objects(bucket: str, body: RemoveRequest) -> list[dict[str, Any]]:
        return await run_in_threadpool(store.remove_objects, bucket, body.prefixes)

    app.include_router(public)
    app.include_router(protected)

    # emulator admin API

    @app.get("/_emulator/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_emulator/requests")
    async def requests() -> list[dict[str, Any]]:
        return log.entries()

    @app.post("/_emulator/reset")
    async def reset() -> dict[str, str]:
        log.clear()
        return {"status": "ok"}

    return app


def install_error_handlers(app: FastAPI) -> None:
    """Render every refusal in the shape the real stack uses, never as a traceback."""

    @app.exception_handler(StorageError)
    async def storage_error(_: Request, exc: StorageError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(GatewayAuthError)
    async def gateway_error(_: Request, exc: GatewayAuthError) -> JSONResponse:
        hint = "Double check your Supabase `anon` or `service_role` API key."
        return JSONResponse({"message": exc.message, "hint": hint}, status_code=401)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return StorageError(400, "InvalidRequest", problems or "invalid request", error="Bad Request").response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in (404, 405):  # no such route: Fastify's own shape
            body = {
                "statusCode": exc.status_code,
                "error": str(exc.detail),
                "message": f"Route {request.method}:{request.url.path} not found",
            }
            return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
        return invalid_request(str(exc.detail)).response()  # e.g. a malformed multipart body


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.emulators.storage",
        description="Supabase Storage emulator (storage-api REST subset over plain HTTP).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to bind")
    parser.add_argument("--data-dir", type=Path, required=True, help="directory for objects and metadata")
    parser.add_argument("--service-key", required=True, help="the key accepted as apikey and bearer token")
    parser.add_argument("--jwt-secret", required=True, help="HS256 secret for user tokens and signed URLs")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535, got {args.port}")
    if not args.service_key or not args.jwt_secret:
        parser.error("--service-key and --jwt-secret must not be empty")
    if args.data_dir.exists() and not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} exists and is not a directory")
    app = create_app(args.data_dir, args.service_key, args.jwt_secret)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal against the
    # handlers it found; ignoring it there turns a requested stop into exit status 0.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: None)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
