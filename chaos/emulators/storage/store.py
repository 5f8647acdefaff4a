"""The filesystem-backed store: bucket and object rows in SQLite, object bytes in version files."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from chaos.emulators.storage.errors import (
    StorageError,
    bucket_already_exists,
    key_already_exists,
    no_such_bucket,
    no_such_key,
)
from chaos.emulators.storage.rows import bucket_json, object_json
from chaos.emulators.storage.validation import mime_allowed


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
        return [bucket_json(row) for row in rows]

    def get_bucket(self, bucket_id: str) -> dict[str, Any]:
        with self._lock:
            return bucket_json(self._bucket_row(bucket_id))

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
        return object_json(row)

    def get_object(self, bucket_id: str, key: str) -> tuple[dict[str, Any], bytes]:
        """The object's row and bytes, read under the lock so a concurrent overwrite cannot tear them."""
        with self._lock:
            self._bucket_row(bucket_id)
            row = self._object_row(bucket_id, key)
            data = self._blob(row["version"]).read_bytes()
        return object_json(row), data

    def object_info(self, bucket_id: str, key: str) -> dict[str, Any]:
        with self._lock:
            self._bucket_row(bucket_id)
            return object_json(self._object_row(bucket_id, key))

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
        return [object_json(row) for row in rows]

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
