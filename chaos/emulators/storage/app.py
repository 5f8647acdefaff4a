"""The storage-api routes over the store, behind the gateway's auth, plus the emulator admin API."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from chaos.emulators.admin import RequestLog, RequestLogMiddleware, admin_routes, request_kind
from chaos.emulators.storage.auth import Authenticator, Caller
from chaos.emulators.storage.bodies import (
    BucketCreate,
    BucketUpdate,
    ListRequest,
    MoveOrCopyRequest,
    RemoveRequest,
    SignManyRequest,
    SignRequest,
)
from chaos.emulators.storage.downloads import object_response
from chaos.emulators.storage.errors import StorageError, install_error_handlers, invalid_jwt, no_such_bucket
from chaos.emulators.storage.listing import list_level
from chaos.emulators.storage.store import ObjectStore
from chaos.emulators.storage.uploads import read_upload
from chaos.emulators.storage.validation import check_bucket_name, check_object_key, parse_size_limit

API_PREFIX = "/storage/v1"


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
        title="Supabase Storage emulator", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan,
        routes=[admin_routes(log)],
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
    return app
