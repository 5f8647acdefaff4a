"""Object listing: one folder level of a bucket, as storage-api's ``search`` function returns it."""

from __future__ import annotations

import sqlite3
from typing import Any

from chaos.emulators.storage.rows import object_json


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
        obj = object_json(row)
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
