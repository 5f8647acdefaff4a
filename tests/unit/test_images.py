"""What users get: a completed generation's signed URL must serve the very image FAL produced. The
FAL result and both downloads come from a small HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import certifi
import pytest

from chaos.run.images import result_paths, verify_images
from tests.unit.judge_support import FAL_APP, completed, failed, result, submit

FAL_KEY = "key-id:key-secret"
PNG = b"\x89PNG\r\n\x1a\n"
FIRST = PNG + bytes(range(256)) * 4  # what FAL made for the first job of a generation
LAST = PNG + bytes(reversed(range(256))) * 4  # ... and for its resubmission, the job whose result counts


class Server:
    """FAL results at ``{FAL_APP}/requests/{id}`` (with its key), FAL's images at ``/fal/{id}.png``, and
    the service's signed URLs at ``/signed/{name}``."""

    def __init__(self) -> None:
        self.images = {"r1": FIRST, "r2": LAST, "r3": FIRST}
        self.signed = {"same.png": LAST, "truncated.png": LAST[:-100], "stale.png": FIRST,
                       "first.png": FIRST}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.requests.append((self.path, self.headers.get("Authorization")))
                prefix = f"{FAL_APP}/requests/"
                if self.path.startswith(prefix):
                    if self.headers.get("Authorization") != f"Key {FAL_KEY}":
                        return self._send(401, b'{"detail": "unauthorized"}')
                    request_id = self.path.removeprefix(prefix)
                    if request_id not in server.images:
                        return self._send(404, b'{"detail": "no such request"}')
                    url = f"{server.url}/fal/{request_id}.png"
                    return self._send(200, json.dumps({"images": [{"url": url, "content_type": "image/png"}]}).encode())
                if self.path.startswith("/fal/"):
                    body = server.images.get(self.path.removeprefix("/fal/").removesuffix(".png"))
                    return self._send(200, body) if body else self._send(404, b"")
                if self.path.startswith("/signed/"):
                    body = server.signed.get(self.path.removeprefix("/signed/"))
                    return self._send(200, body) if body else self._send(404, b"not found")
                self._send(404, b"")

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    thread = threading.Thread(target=s.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield s
    finally:
        s.httpd.shutdown()
        s.httpd.server_close()
        thread.join(timeout=5)


# g1 was submitted twice (r1, then r2 after a retry); both results were fetched, r2's is the one delivered
FAL_LOG = [submit(1.0, 200, "r1", "g1"), result(2.0, "r1"),
           submit(3.0, 200, "r2", "g1"), result(5.0, "r2"),
           submit(6.0, 200, "r3", "g3"), result(6.5, "r3", status=500)]


# --- which FAL result belongs to a generation -----------------------------------------------------

def test_result_paths_name_the_last_successful_result_of_each_generation():
    assert result_paths(FAL_LOG) == {"g1": f"{FAL_APP}/requests/r2"}


def test_result_paths_follow_arrival_time_not_log_order():
    assert result_paths(list(reversed(FAL_LOG))) == {"g1": f"{FAL_APP}/requests/r2"}


def test_a_later_failed_result_fetch_does_not_replace_a_successful_one():
    log = [*FAL_LOG, result(7.0, "r2", status=500), result(7.5, "r1", status=404)]
    assert result_paths(log) == {"g1": f"{FAL_APP}/requests/r2"}


def test_results_of_jobs_no_generation_submitted_are_ignored():
    log = [submit(1.0, 200, "r9", None), result(2.0, "r9"), result(3.0, "r-unknown")]
    assert result_paths(log) == {}


def test_a_generation_whose_result_was_never_fetched_has_no_path():
    assert result_paths([submit(1.0, 200, "r1", "g1")]) == {}


# --- the signed URL against FAL's image ------------------------------------------------------------

def record(server: Server, generation_id: str, signed: str | None):
    r = completed(1.0, generation_id=generation_id)
    r.image_url = None if signed is None else f"{server.url}/signed/{signed}"
    return r


async def verify(server: Server, records: list, fal_key: str = FAL_KEY, log: list | None = None) -> None:
    await verify_images(records, FAL_LOG if log is None else log, fal_url=server.url, fal_key=fal_key,
                        ca_bundle=certifi.where())


async def test_a_signed_url_serving_fals_image_byte_for_byte_is_ok(server):
    ok = record(server, "g1", "same.png")
    await verify(server, [ok])
    assert ok.image_ok is True
    assert ok.succeeded
    # FAL's result was asked for with the FAL key
    assert (f"{FAL_APP}/requests/r2", f"Key {FAL_KEY}") in server.requests


async def test_a_truncated_image_is_not_ok(server):
    truncated = record(server, "g1", "truncated.png")
    await verify(server, [truncated])
    assert truncated.image_ok is False
    assert not truncated.succeeded


async def test_a_missing_image_is_not_ok(server):
    missing = record(server, "g1", "missing.png")
    await verify(server, [missing])
    assert missing.image_ok is False


async def test_the_image_of_a_superseded_fal_job_is_not_ok(server):
    stale = record(server, "g1", "stale.png")
    await verify(server, [stale])
    assert stale.image_ok is False


async def test_a_completed_generation_without_a_signed_url_is_not_ok(server):
    no_url = record(server, "g1", None)
    await verify(server, [no_url])
    assert no_url.image_ok is False


async def test_a_generation_whose_fal_result_was_never_fetched_is_not_ok(server):
    # g3's only result fetch failed: FAL never delivered an image the signed URL could match
    unfetched = record(server, "g3", "first.png")
    await verify(server, [unfetched])
    assert unfetched.image_ok is False


async def test_when_fal_refuses_the_result_the_image_cannot_be_confirmed(server):
    ok = record(server, "g1", "same.png")
    await verify(server, [ok], fal_key="wrong:key")
    assert ok.image_ok is False


async def test_only_completed_generations_are_checked(server):
    not_done = failed(2.0)
    not_done.generation_id = "g1"
    not_done.image_url = f"{server.url}/signed/same.png"
    await verify(server, [not_done])
    assert not_done.image_ok is None
    assert server.requests == []


async def test_many_generations_are_each_judged_on_their_own(server):
    log = [submit(1.0 + i, 200, "r2" if i == 0 else "r1", f"g{i}") for i in range(2)]
    log += [result(5.0, "r2"), result(5.5, "r1")]
    good, bad = record(server, "g0", "same.png"), record(server, "g1", "same.png")
    many = [record(server, "g0", "same.png") for _ in range(12)]
    await verify(server, [good, bad, *many], log=log)
    assert (good.image_ok, bad.image_ok) == (True, False)
    assert all(r.image_ok is True for r in many)
