"""The Storage emulator driven by the real `supabase` / `storage3` clients over real sockets."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
import uvicorn
from storage3.exceptions import StorageApiError
from supabase import acreate_client, create_client

from chaos.emulators.storage import create_app

SERVICE_KEY = "test-service-key"
JWT_SECRET = "test-jwt-secret-with-at-least-32-bytes!"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8 + b"\r\n--not-a-boundary\r\n"

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class Emulator:
    url: str  # the Supabase project URL
    data_dir: Path

    @property
    def storage(self) -> str:
        return f"{self.url}/storage/v1"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The emulator app served by uvicorn in a thread on a free 127.0.0.1 port."""
    data_dir = tmp_path_factory.mktemp("storage") / "data"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(data_dir, SERVICE_KEY, JWT_SECRET), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "emulator did not start"
            time.sleep(0.02)
        yield Emulator(f"http://127.0.0.1:{port}", data_dir)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def bucket_id() -> str:
    return f"b-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sync_client(emulator: Emulator):
    return create_client(emulator.url, SERVICE_KEY)


@pytest.fixture
async def async_client(emulator: Emulator):
    return await acreate_client(emulator.url, SERVICE_KEY)


def user_token(role: str = "authenticated", expires_in: int = 3600, secret: str = JWT_SECRET) -> str:
    now = int(time.time())
    claims = {"sub": str(uuid.uuid4()), "role": role, "aud": "authenticated", "iat": now, "exp": now + expires_in}
    return jwt.encode(claims, secret, algorithm="HS256")


def with_token(signed_url: str, token: str) -> str:
    return signed_url.split("?token=")[0] + f"?token={token}"


# ----------------------------------------------------------------------------- buckets


def test_bucket_lifecycle_with_sync_client(sync_client, bucket_id: str) -> None:
    storage = sync_client.storage
    assert storage.create_bucket(
        bucket_id, options={"public": False, "file_size_limit": 1024, "allowed_mime_types": ["image/*"]}
    ) == {"name": bucket_id}

    bucket = storage.get_bucket(bucket_id)  # pydantic validation of the row
    assert (bucket.id, bucket.name, bucket.public) == (bucket_id, bucket_id, False)
    assert (bucket.file_size_limit, bucket.allowed_mime_types) == (1024, ["image/*"])
    assert bucket_id in [b.id for b in storage.list_buckets()]

    with pytest.raises(StorageApiError) as duplicate:
        storage.create_bucket(bucket_id)
    assert (duplicate.value.status, duplicate.value.code) == ("409", "Duplicate")

    assert storage.update_bucket(bucket_id, {"public": True, "file_size_limit": None}) == {
        "message": "Successfully updated"
    }
    updated = storage.get_bucket(bucket_id)
    assert (updated.public, updated.file_size_limit) == (True, None)

    storage.from_(bucket_id).upload("a.png", PNG, {"content-type": "image/png"})
    with pytest.raises(StorageApiError) as not_empty:
        storage.delete_bucket(bucket_id)
    assert not_empty.value.status == "409"
    storage.empty_bucket(bucket_id)
    assert storage.from_(bucket_id).list() == []
    assert storage.delete_bucket(bucket_id) == {"message": "Successfully deleted"}
    with pytest.raises(StorageApiError) as gone:
        storage.get_bucket(bucket_id)
    assert (gone.value.status, gone.value.code) == ("404", "Bucket not found")


def test_bucket_limits_are_enforced_on_upload(sync_client, bucket_id: str) -> None:
    sync_client.storage.create_bucket(bucket_id, options={"file_size_limit": 100, "allowed_mime_types": ["image/png"]})
    files = sync_client.storage.from_(bucket_id)
    with pytest.raises(StorageApiError) as too_large:
        files.upload("big.png", b"x" * 101, {"content-type": "image/png"})
    assert too_large.value.status == "413"
    with pytest.raises(StorageApiError) as wrong_type:
        files.upload("small.txt", b"hello", {"content-type": "text/plain"})
    assert wrong_type.value.status == "415"
    files.upload("small.png", b"x" * 100, {"content-type": "image/png"})


# ----------------------------------------------------------------------------- objects


async def test_upload_duplicate_upsert_update_download(async_client, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)

    uploaded = await files.upload("jobs/1/image.png", PNG, {"content-type": "image/png"})
    assert uploaded.full_path == f"{bucket_id}/jobs/1/image.png"
    assert await files.download("jobs/1/image.png") == PNG

    with pytest.raises(StorageApiError) as duplicate:
        await files.upload("jobs/1/image.png", b"other", {"content-type": "image/png"})
    assert (duplicate.value.status, duplicate.value.code) == ("409", "Duplicate")
    assert await files.download("jobs/1/image.png") == PNG

    await files.upload("jobs/1/image.png", b"upserted", {"content-type": "image/png", "upsert": "true"})
    assert await files.download("jobs/1/image.png") == b"upserted"

    await files.update("jobs/1/image.png", PNG[::-1], {"content-type": "image/webp", "cache-control": "60"})
    assert await files.download("jobs/1/image.png") == PNG[::-1]
    info = await files.info("jobs/1/image.png")
    assert info["metadata"]["mimetype"] == "image/webp"
    assert info["metadata"]["cacheControl"] == "max-age=60"
    assert info["metadata"]["size"] == len(PNG)

    with pytest.raises(StorageApiError) as update_missing:
        await files.update("jobs/2/none.png", PNG, {"content-type": "image/png"})
    assert update_missing.value.status == "404"


async def test_upload_metadata_and_raw_body(async_client, emulator: Emulator, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)
    await files.upload("meta.png", PNG, {"content-type": "image/png", "metadata": {"job": "42"}})
    assert (await files.info("meta.png"))["user_metadata"] == {"job": "42"}

    raw = httpx.post(
        f"{emulator.storage}/object/{bucket_id}/raw.bin",
        content=b"\x00raw\xff",
        headers={"apikey": SERVICE_KEY, "Content-Type": "application/x-custom"},
        timeout=10,
    )
    assert raw.status_code == 200 and raw.json()["Key"] == f"{bucket_id}/raw.bin"
    assert await files.download("raw.bin") == b"\x00raw\xff"
    assert (await files.info("raw.bin"))["metadata"]["mimetype"] == "application/x-custom"


async def test_metadata_nested_too_deep_is_a_clear_400_never_a_500(async_client, emulator: Emulator,
                                                                    bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    deep = httpx.post(f"{emulator.storage}/object/{bucket_id}/deep.png", headers={"apikey": SERVICE_KEY},
                      files={"file": ("deep.png", PNG, "image/png")},
                      data={"metadata": "[" * 100_000 + "]" * 100_000}, timeout=10)
    assert deep.status_code == 400 and "metadata" in deep.json()["message"]


async def test_keys_with_spaces_and_percent_signs_round_trip(async_client, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)
    key = "job 1/100% done & ok.png"
    await files.upload(key, PNG, {"content-type": "image/png"})
    assert await files.download(key) == PNG
    assert [entry["name"] for entry in await files.list("job 1")] == ["100% done & ok.png"]
    signed = await files.create_signed_url(key, 60)
    assert httpx.get(signed["signedURL"], timeout=10).content == PNG


async def test_missing_object_and_bucket_errors(async_client, emulator: Emulator, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)
    with pytest.raises(StorageApiError) as missing:
        await files.download("nope.png")
    assert (missing.value.status, missing.value.code, missing.value.message) == ("404", "not_found", "Object not found")
    with pytest.raises(StorageApiError) as no_bucket:
        await async_client.storage.from_("no-such-bucket").download("x.png")
    assert (no_bucket.value.status, no_bucket.value.code) == ("404", "Bucket not found")

    raw = httpx.get(f"{emulator.storage}/object/{bucket_id}/nope.png", headers={"apikey": SERVICE_KEY}, timeout=10)
    assert raw.status_code == 400  # storage-api's userStatusCode rule
    assert raw.json() == {"statusCode": "404", "code": "NoSuchKey", "error": "not_found", "message": "Object not found"}


# ----------------------------------------------------------------------------- signed and public URLs


async def test_signed_url_serves_bytes_without_credentials(async_client, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)
    await files.upload("out/image.png", PNG, {"content-type": "image/png"})
    signed = await files.create_signed_url("out/image.png", 60)
    assert signed["signedURL"].startswith(f"{async_client.storage_url}object/sign/{bucket_id}/out/image.png?token=")

    async with httpx.AsyncClient(timeout=10) as plain:
        response = await plain.get(signed["signedURL"])
        assert response.status_code == 200
        assert response.content == PNG
        assert response.headers["content-type"] == "image/png"
        assert response.headers["cache-control"] == "max-age=3600"
        assert response.headers["etag"].startswith('"')
        assert response.headers["last-modified"].endswith("GMT")

        partial = await plain.get(signed["signedURL"], headers={"Range": "bytes=2-9"})
        assert partial.status_code == 206
        assert partial.content == PNG[2:10]
        assert partial.headers["content-range"] == f"bytes 2-9/{len(PNG)}"
        unsatisfiable = await plain.get(signed["signedURL"], headers={"Range": f"bytes={len(PNG)}-"})
        assert unsatisfiable.status_code == 416


async def test_tampered_expired_and_misdirected_tokens_are_rejected(async_client, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)
    await files.upload("a.png", PNG, {"content-type": "image/png"})
    await files.upload("b.png", b"secret b", {"content-type": "image/png"})
    signed = (await files.create_signed_url("a.png", 60))["signedURL"]
    token = signed.split("?token=")[1]
    now = int(time.time())
    expired = jwt.encode({"url": f"{bucket_id}/a.png", "iat": now - 120, "exp": now - 60}, JWT_SECRET, "HS256")
    forged = jwt.encode({"url": f"{bucket_id}/a.png", "iat": now, "exp": now + 60}, "another-secret-32-bytes-long!!!!", "HS256")
    other_path = with_token(signed.replace("/a.png", "/b.png"), token)

    async with httpx.AsyncClient(timeout=10) as plain:
        tampered = await plain.get(with_token(signed, token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")))
        for url in (with_token(signed, expired), with_token(signed, forged)):
            response = await plain.get(url)
            assert response.status_code == 400
            assert response.json()["code"] == "InvalidJWT"
        assert tampered.status_code == 400 and tampered.json()["code"] == "InvalidJWT"
        misdirected = await plain.get(other_path)
        assert misdirected.status_code == 400 and misdirected.json()["code"] == "InvalidSignature"
        assert b"secret b" not in misdirected.content


async def test_signing_missing_object_and_multi_sign(async_client, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)
    await files.upload("one.png", PNG, {"content-type": "image/png"})
    with pytest.raises(StorageApiError) as missing:
        await files.create_signed_url("none.png", 60)
    assert missing.value.status == "404"

    results = await files.create_signed_urls(["one.png", "none.png"], 60)
    assert [r["path"] for r in results] == ["one.png", "none.png"]
    assert results[0]["error"] is None and results[1]["error"] and results[1]["signedURL"] is None
    assert httpx.get(results[0]["signedURL"], timeout=10).content == PNG


async def test_public_url_only_for_public_buckets(async_client, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)
    await files.upload("pub.png", PNG, {"content-type": "image/png"})
    public_url = await files.get_public_url("pub.png")
    assert public_url.endswith(f"/storage/v1/object/public/{bucket_id}/pub.png")

    private = httpx.get(public_url, timeout=10)
    assert private.status_code == 400 and private.json()["code"] == "NoSuchBucket"
    await async_client.storage.update_bucket(bucket_id, {"public": True})
    public = httpx.get(public_url, timeout=10)
    assert public.status_code == 200 and public.content == PNG
    assert public.headers["content-type"] == "image/png"


# ----------------------------------------------------------------------------- list, remove, move, copy, info


async def test_list_folders_and_files(async_client, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)
    for key in ("a/x.png", "a/y.png", "a/sub/z.png", "b.png", "a/sub/deeper/w.png"):
        await files.upload(key, PNG, {"content-type": "image/png"})

    level_a = await files.list("a")
    assert [entry["name"] for entry in level_a] == ["sub", "x.png", "y.png"]
    folder = level_a[0]
    assert (folder["id"], folder["created_at"], folder["updated_at"], folder["metadata"]) == (None, None, None, None)
    assert level_a[1]["id"] and level_a[1]["metadata"]["mimetype"] == "image/png"

    assert [entry["name"] for entry in await files.list()] == ["a", "b.png"]
    assert [entry["name"] for entry in await files.list("a/sub/")] == ["deeper", "z.png"]
    assert [entry["name"] for entry in await files.list("a", {"search": "X"})] == ["x.png"]
    assert [entry["name"] for entry in await files.list("a", {"limit": 1, "offset": 1})] == ["x.png"]
    descending = await files.list("a", {"sortBy": {"column": "name", "order": "desc"}})
    assert [entry["name"] for entry in descending] == ["y.png", "x.png", "sub"]
    assert await files.list("nothing-here") == []


async def test_remove_returns_deleted_rows(async_client, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)
    await files.upload("r/1.png", PNG, {"content-type": "image/png"})
    await files.upload("r/2.png", PNG, {"content-type": "image/png"})
    removed = await files.remove(["r/1.png", "r/missing.png"])
    assert [row["name"] for row in removed] == ["r/1.png"]
    assert removed[0]["bucket_id"] == bucket_id and removed[0]["metadata"]["size"] == len(PNG)
    assert await files.exists("r/1.png") is False
    assert await files.exists("r/2.png") is True
    assert await files.remove(["r/1.png"]) == []


async def test_move_copy_info_exists(async_client, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)
    await files.upload("src.png", PNG, {"content-type": "image/png"})

    assert await files.move("src.png", "moved/dst.png") == {"message": "Successfully moved"}
    assert await files.exists("src.png") is False
    assert await files.download("moved/dst.png") == PNG

    copied = await files.copy("moved/dst.png", "copy.png")
    assert copied["Key"] == f"{bucket_id}/copy.png"
    assert await files.download("copy.png") == PNG
    assert await files.exists("moved/dst.png") is True

    info = await files.info("copy.png")
    assert (info["name"], info["bucket_id"], info["metadata"]["mimetype"]) == ("copy.png", bucket_id, "image/png")

    with pytest.raises(StorageApiError) as onto_existing:
        await files.move("copy.png", "moved/dst.png")
    assert onto_existing.value.status == "409"
    with pytest.raises(StorageApiError) as missing_source:
        await files.copy("never.png", "x.png")
    assert missing_source.value.status == "404"


# ----------------------------------------------------------------------------- auth and hostile input


async def test_api_key_and_bearer_checks(emulator: Emulator, bucket_id: str) -> None:
    bad = await acreate_client(emulator.url, "wrong-key")
    with pytest.raises(StorageApiError) as invalid:
        await bad.storage.list_buckets()
    assert invalid.value.status == 401 and "Invalid API key" in invalid.value.message

    no_key = httpx.get(f"{emulator.storage}/bucket", timeout=10)
    assert no_key.status_code == 401 and no_key.json()["message"] == "No API key found in request"

    headers = {"apikey": SERVICE_KEY, "Authorization": f"Bearer {user_token(expires_in=-60)}"}
    expired_user = httpx.get(f"{emulator.storage}/bucket", headers=headers, timeout=10)
    assert expired_user.status_code == 403 and expired_user.json()["error"] == "Unauthorized"

    anon = httpx.get(f"{emulator.storage}/bucket", headers={"APIKEY": user_token(role="anon")}, timeout=10)
    assert anon.status_code == 403

    user = await acreate_client(emulator.url, user_token())  # a signed-in user's JWT as key and bearer
    await user.storage.create_bucket(bucket_id)
    await user.storage.from_(bucket_id).upload("mine.png", PNG, {"content-type": "image/png"})
    assert await user.storage.from_(bucket_id).download("mine.png") == PNG


async def test_path_traversal_is_rejected(async_client, emulator: Emulator, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)
    await files.upload("safe.png", PNG, {"content-type": "image/png"})
    before = set(emulator.data_dir.parent.rglob("*"))

    with pytest.raises(StorageApiError) as moved_out:
        await files.move("safe.png", "../../escaped.png")
    assert moved_out.value.status == "400"
    headers = {"apikey": SERVICE_KEY, "Content-Type": "image/png"}
    for path in ("%2E%2E/%2E%2E/escaped.png", "a/..%2F..%2F..%2Fescaped.png", "%2E/escaped.png"):
        response = httpx.post(f"{emulator.storage}/object/{bucket_id}/{path}", content=PNG, headers=headers, timeout=10)
        assert response.status_code == 400, path
        assert response.json()["code"] == "InvalidKey"

    created = {p for p in set(emulator.data_dir.parent.rglob("*")) - before if p.parent != emulator.data_dir / "objects"}
    assert not [p for p in created if "escaped" in p.name or emulator.data_dir not in p.parents]
    assert await files.download("safe.png") == PNG


async def test_bad_bodies_get_clear_400s(emulator: Emulator, bucket_id: str) -> None:
    headers = {"apikey": SERVICE_KEY}
    async with httpx.AsyncClient(base_url=emulator.storage, headers=headers, timeout=10) as raw:
        for response in (
            await raw.post("/bucket", json={"public": "maybe"}),
            await raw.post("/bucket", content=b"{not json", headers={"Content-Type": "application/json"}),
            await raw.post(f"/object/list/{bucket_id}", json={"prefix": "", "limit": -1}),
            await raw.post(f"/object/sign/{bucket_id}/x.png", json={"expiresIn": "soon"}),
        ):
            assert response.status_code == 400
            body = response.json()
            assert body["statusCode"] == "400" and body["message"]


async def test_concurrent_uploads_do_not_corrupt(async_client, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)
    payloads = {f"c/{i}.png": os.urandom(20_000 + i) for i in range(24)}
    same_key_payloads = [bytes([i]) * 30_000 for i in range(12)]

    await asyncio.gather(
        *(files.upload(key, data, {"content-type": "image/png"}) for key, data in payloads.items()),
        *(files.upload("c/shared.png", data, {"content-type": "image/png", "upsert": "true"})
          for data in same_key_payloads),
    )
    downloads = await asyncio.gather(*(files.download(key) for key in payloads))
    assert downloads == list(payloads.values())
    assert await files.download("c/shared.png") in same_key_payloads
    assert len(await files.list("c", {"limit": 1000})) == len(payloads) + 1


# ----------------------------------------------------------------------------- admin API and CLI


async def test_request_log_and_reset(async_client, emulator: Emulator, bucket_id: str) -> None:
    await async_client.storage.create_bucket(bucket_id)
    files = async_client.storage.from_(bucket_id)
    httpx.post(f"{emulator.url}/_emulator/reset", timeout=10).raise_for_status()

    await files.upload("log.png", PNG, {"content-type": "image/png"})
    signed = await files.create_signed_url("log.png", 60)
    httpx.get(signed["signedURL"], timeout=10)
    await files.download("log.png")
    await files.list()
    await files.remove(["log.png"])
    with pytest.raises(StorageApiError):
        await files.download("log.png")

    entries = httpx.get(f"{emulator.url}/_emulator/requests", timeout=10).json()
    mine = [e for e in entries if bucket_id in e["path"]]
    assert [(e["method"], e["kind"], e["status"]) for e in mine] == [
        ("POST", "upload", 200),
        ("POST", "sign", 200),
        ("GET", "signed_get", 200),
        ("GET", "download", 200),
        ("POST", "list", 200),
        ("DELETE", "remove", 200),
        ("GET", "download", 400),
    ]
    assert all(e["request_id"] is None and isinstance(e["t"], float) for e in mine)
    assert not any(e["path"].startswith("/_emulator") for e in entries)

    await files.upload("kept.png", PNG, {"content-type": "image/png"})
    assert httpx.post(f"{emulator.url}/_emulator/reset", timeout=10).status_code == 200
    assert httpx.get(f"{emulator.url}/_emulator/requests", timeout=10).json() == []
    assert await files.download("kept.png") == PNG  # reset keeps objects


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_command_line_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    command = [
        sys.executable, "-m", "chaos.emulators.storage", "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(tmp_path / "data"), "--service-key", SERVICE_KEY, "--jwt-secret", JWT_SECRET,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.communicate()[1].decode()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "emulator did not come up"
                time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        client = create_client(f"http://127.0.0.1:{port}", SERVICE_KEY)
        client.storage.create_bucket("cli")
        client.storage.from_("cli").upload("x.png", PNG, {"content-type": "image/png"})
        assert (tmp_path / "data" / "metadata.sqlite3").exists()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def test_command_line_rejects_bad_arguments(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = subprocess.run(
        [sys.executable, "-m", "chaos.emulators.storage", "--port", "1", "--data-dir", str(not_a_dir),
         "--service-key", "k", "--jwt-secret", "s"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "--data-dir" in result.stderr and "Traceback" not in result.stderr
