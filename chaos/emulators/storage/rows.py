"""storage-api's JSON shapes of bucket and object rows, as its clients parse them."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def bucket_json(row: sqlite3.Row) -> dict[str, Any]:
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


def object_json(row: sqlite3.Row) -> dict[str, Any]:
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
