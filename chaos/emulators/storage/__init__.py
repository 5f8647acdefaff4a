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

from chaos.emulators.storage.app import create_app

__all__ = ["create_app"]
