"""The FAL emulator speaks the queue protocol the way fal-client 1.0.3 expects, over real TLS, and
its admin API injects the faults the chaos scenarios rely on."""

from __future__ import annotations

import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from chaos.emulators.fal import create_app

if TYPE_CHECKING:
    from conftest import FalEmulator

pytestmark = pytest.mark.timeout(60)

KEY = {"Authorization": "Key test-key"}


def test_submit_status_with_logs_and_result(fal_emulator: FalEmulator) -> None:
    fal_emulator.set_behaviour(queue_time_s=0.5, processing_time_s=0.5)
    outcome = fal_emulator.run_client("""
        async def main():
            handle = await client.submit(
                APP, {"prompt": "a red fox"}, headers={"x-genchaos-generation-id": "gen-42"},
                webhook_url="https://hooks.example/fal", priority="low", hint="gpu-a")
            phases, last = [], None
            while not isinstance(last, fal_client.Completed):
                last = await handle.status(with_logs=True)
                if not phases or phases[-1][0] != type(last).__name__:
                    phases.append((type(last).__name__, getattr(last, "logs", None)))
                await asyncio.sleep(0.05)
            return {"request_id": handle.request_id, "status_url": handle.status_url, "phases": phases,
                    "metrics": last.metrics, "error": last.error, "result": await handle.get()}
    """)
    request_id = outcome["request_id"]
    assert [name for name, _ in outcome["phases"]] == ["Queued", "InProgress", "Completed"]
    assert outcome["phases"][1][1][0]["message"] == "Generating image"
    assert [line["level"] for line in outcome["phases"][2][1]] == ["INFO", "INFO"]
    assert outcome["status_url"] == f"{fal_emulator.url}/fal-ai/flux/requests/{request_id}/status"
    assert outcome["metrics"]["inference_time"] == pytest.approx(0.5, abs=0.01)
    assert outcome["error"] is None
    result = outcome["result"]
    assert result["images"][0]["url"] == f"{fal_emulator.url}/files/{request_id}.png"
    assert result["images"][0]["content_type"] == "image/png"
    assert result["prompt"] == "a red fox"
    [submit] = fal_emulator.requests("submit")
    assert submit == {**submit, "method": "POST", "path": "/fal-ai/flux/dev", "status": 200,
                      "request_id": request_id, "generation_id": "gen-42"}
    assert fal_emulator.requests()[-1]["kind"] == "result"


def test_subscribe_then_status_and_result_by_id(fal_emulator: FalEmulator) -> None:
    fal_emulator.set_behaviour(queue_time_s=0.3, processing_time_s=0.3)
    outcome = fal_emulator.run_client("""
        async def main():
            updates, enqueued = [], []
            result = await client.subscribe(
                APP, {"prompt": "a lighthouse"}, with_logs=True,
                on_enqueue=enqueued.append, on_queue_update=lambda s: updates.append(type(s).__name__))
            status = await client.status(APP, enqueued[0], with_logs=True)
            return {"request_id": enqueued[0], "updates": updates, "result": result,
                    "status": type(status).__name__, "logs": status.logs,
                    "by_id": await client.result(APP, enqueued[0])}
    """)
    assert outcome["updates"][0] == "Queued"
    assert "InProgress" in outcome["updates"]
    assert outcome["updates"][-1] == "Completed"
    assert outcome["status"] == "Completed" and len(outcome["logs"]) == 2
    assert outcome["by_id"] == outcome["result"]
    assert outcome["result"]["images"][0]["url"].endswith(f"/files/{outcome['request_id']}.png")
    kinds = [entry["kind"] for entry in fal_emulator.requests()]
    assert kinds[0] == "submit" and kinds[-1] == "result" and "status" in kinds


def test_cancel_queued_request_then_cancel_completed_request(fal_emulator: FalEmulator) -> None:
    fal_emulator.set_behaviour(queue_time_s=30)
    outcome = fal_emulator.run_client("""
        async def main():
            handle = await client.submit(APP, {"prompt": "slow"})
            await handle.cancel()
            status = await handle.status()
            try:
                await client.cancel(APP, handle.request_id)
                again = None
            except fal_client.FalClientHTTPError as exc:
                again = http_error(exc)
            return {"status": type(status).__name__, "error_type": status.error_type, "again": again}
    """)
    assert outcome["status"] == "Completed"
    assert outcome["error_type"] == "request_cancelled"
    assert outcome["again"]["status_code"] == 400
    assert "ALREADY_COMPLETED" in outcome["again"]["message"]
    assert [entry["status"] for entry in fal_emulator.requests("cancel")] == [202, 400]


def test_missing_or_malformed_key_is_401_in_fal_shape(fal_emulator: FalEmulator) -> None:
    for headers in ({}, {"Authorization": "Bearer abc"}, {"Authorization": "Key"}):
        response = fal_emulator.http.post(f"{fal_emulator.url}/fal-ai/flux/dev", json={"prompt": "x"},
                                          headers=headers)
        assert response.status_code == 401
        assert "Authorization: Key" in response.json()["detail"]
        assert "x-fal-request-id" in response.headers
    assert [entry["status"] for entry in fal_emulator.requests("submit")] == [401, 401, 401]


async def test_only_the_configured_key_is_accepted_and_a_revoked_key_is_refused_until_restored() -> None:
    transport = httpx.ASGITransport(app=create_app(api_key="id:secret"))
    async with httpx.AsyncClient(transport=transport, base_url="https://fal.test") as client:
        async def submit(key: str) -> int:
            return (await client.post("/fal-ai/flux/dev", json={}, headers={"Authorization": f"Key {key}"})).status_code

        assert [await submit("id:secret"), await submit("id:other"), await submit("other:secret")] == [200, 401, 401]
        await client.put("/_emulator/behaviour", json={"key_revoked": True})
        refused = await client.post("/fal-ai/flux/dev", json={}, headers={"Authorization": "Key id:secret"})
        assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
        await client.put("/_emulator/behaviour", json={"key_revoked": False})
        assert await submit("id:secret") == 200
    open_transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=open_transport, base_url="https://fal.test") as client:
        assert (await client.post("/fal-ai/flux/dev", json={}, headers={"Authorization": "Key any"})).status_code == 200


def test_unknown_request_id_is_404(fal_emulator: FalEmulator) -> None:
    outcome = fal_emulator.run_client("""
        async def main():
            errors = []
            for call in (client.status(APP, "no-such-request"), client.result(APP, "no-such-request")):
                try:
                    await call
                except fal_client.FalClientHTTPError as exc:
                    errors.append(http_error(exc))
            return errors
    """)
    assert [error["status_code"] for error in outcome] == [404, 404]
    assert "no-such-request" in outcome[0]["message"]


def test_rate_limited_submit_is_retried_by_fal_client(fal_emulator: FalEmulator) -> None:
    fal_emulator.set_behaviour(rate_limit_rate=0.7, seed=11)  # seed 11 draws two 429s first
    outcome = fal_emulator.run_client("""
        async def main():
            return await client.subscribe(APP, {"prompt": "busy"})
    """)
    assert outcome["images"]
    statuses = [entry["status"] for entry in fal_emulator.requests("submit")]
    assert statuses[-1] == 200
    assert statuses[:-1] and set(statuses[:-1]) == {429}


def test_ingress_errors_carry_no_request_id_and_are_retried(fal_emulator: FalEmulator) -> None:
    fal_emulator.set_behaviour(ingress_error_rate=1, ingress_error_status=502)
    response = fal_emulator.http.post(f"{fal_emulator.url}/fal-ai/flux/dev", json={}, headers=KEY)
    assert response.status_code == 502
    assert "nginx" in response.text and "x-fal-request-id" not in response.headers

    fal_emulator.set_behaviour(ingress_error_rate=0.3, ingress_error_status=503, seed=1)  # seed 1: first submit hit
    outcome = fal_emulator.run_client("""
        async def main():
            return await client.subscribe(APP, {"prompt": "through the ingress"})
    """)
    assert outcome["images"]
    submits = [entry["status"] for entry in fal_emulator.requests("submit")]
    assert submits[0] == 502 and submits[1] == 503 and submits[-1] == 200


def test_submit_app_error_is_raised_at_once(fal_emulator: FalEmulator) -> None:
    fal_emulator.set_behaviour(submit_error_rate=1)
    outcome = fal_emulator.run_client("""
        async def main():
            errors = []
            for status in (500, 503):
                await set_behaviour(submit_error_status=status)
                try:
                    await client.submit(APP, {"prompt": "x"})
                except fal_client.FalClientHTTPError as exc:
                    errors.append(http_error(exc))
            return errors
    """)
    assert [(error["status_code"], error["error_type"]) for error in outcome] == [
        (500, "internal_server_error"), (503, "runner_scheduling_failure")]
    assert [entry["status"] for entry in fal_emulator.requests("submit")] == [500, 503]


def test_stuck_job_stays_in_progress_until_cancelled(fal_emulator: FalEmulator) -> None:
    fal_emulator.set_behaviour(stuck_rate=1, queue_time_s=0, processing_time_s=0.05)
    outcome = fal_emulator.run_client("""
        async def main():
            handle = await client.submit(APP, {"prompt": "never ends"})
            await asyncio.sleep(0.6)
            still = await handle.status(with_logs=True)
            await handle.cancel()
            after = await handle.status()
            return {"still": type(still).__name__, "after": type(after).__name__, "error_type": after.error_type}
    """)
    assert outcome == {"still": "InProgress", "after": "Completed", "error_type": "request_cancelled"}


def test_failed_job_completes_with_error_and_result_raises(fal_emulator: FalEmulator) -> None:
    fal_emulator.set_behaviour(job_failure_rate=1, queue_time_s=0, processing_time_s=0.05)
    outcome = fal_emulator.run_client("""
        async def main():
            handle = await client.submit(APP, {"prompt": "doomed"})
            try:
                await handle.get()
                raised = None
            except fal_client.FalClientHTTPError as exc:
                raised = http_error(exc)
            status = await handle.status()
            return {"raised": raised, "status": type(status).__name__, "error": status.error,
                    "error_type": status.error_type}
    """)
    assert outcome["status"] == "Completed"
    assert outcome["error_type"] == "runner_disconnected" and outcome["error"]
    assert outcome["raised"] == {"status_code": 503, "error_type": "runner_disconnected", "message": outcome["error"]}


def test_run_host_returns_the_result_directly(fal_emulator: FalEmulator) -> None:
    outcome = fal_emulator.run_client("""
        async def main():
            return await client.run(APP, {"prompt": "right now"})
    """)
    assert outcome["prompt"] == "right now" and outcome["images"]
    [run] = fal_emulator.requests("run")
    assert run["path"] == "/_run/fal-ai/flux/dev" and run["status"] == 200


def test_generated_file_is_a_valid_png(fal_emulator: FalEmulator) -> None:
    fal_emulator.set_behaviour(queue_time_s=0, processing_time_s=0)
    submitted = fal_emulator.http.post(f"{fal_emulator.url}/fal-ai/flux/dev", json={"prompt": "x"}, headers=KEY)
    result = fal_emulator.http.get(submitted.json()["response_url"], headers=KEY).json()
    image = fal_emulator.http.get(result["images"][0]["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    width, height = decode_png_size(image.content)
    assert (width, height) == (result["images"][0]["width"], result["images"][0]["height"])
    missing = fal_emulator.http.get(f"{fal_emulator.url}/files/no-such-request.png")
    assert missing.status_code == 404


def decode_png_size(data: bytes) -> tuple[int, int]:
    """Check the PNG structure (signature, chunk CRCs, pixel data size) and return its size."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC on {kind!r}"
        chunks[kind] = chunks.get(kind, b"") + body
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2)
    assert len(zlib.decompress(chunks[b"IDAT"])) == height * (1 + width * 3)
    assert b"IEND" in chunks
    return width, height


def test_urls_point_where_the_client_connected(fal_emulator: FalEmulator) -> None:
    port = fal_emulator.url.rsplit(":", 1)[1]
    response = fal_emulator.http.post(f"https://localhost:{port}/fal-ai/flux/dev", json={}, headers=KEY)
    assert response.json()["status_url"].startswith(f"https://localhost:{port}/fal-ai/flux/requests/")
    proxied = fal_emulator.http.post(f"{fal_emulator.url}/fal-ai/flux/dev", json={},
                                     headers={**KEY, "Host": "127.0.0.1:1"})
    assert proxied.json()["response_url"].startswith("https://127.0.0.1:1/fal-ai/flux/requests/")


async def test_queue_position_counts_requests_ahead() -> None:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="https://fal.test", headers=KEY) as client:
        await client.put("/_emulator/behaviour", json={"queue_time_s": 30})
        positions = [(await client.post("/fal-ai/flux/dev", json={})).json()["queue_position"] for _ in range(3)]
        last = (await client.get("/_emulator/requests")).json()[-1]["request_id"]
        status = (await client.get(f"/fal-ai/flux/requests/{last}/status")).json()
    assert positions == [0, 1, 2]
    assert status == {**status, "status": "IN_QUEUE", "queue_position": 2, "logs": None}


def test_latency_is_added_to_protocol_calls(fal_emulator: FalEmulator) -> None:
    fal_emulator.set_behaviour(latency_s=0.4)
    started = time.monotonic()
    fal_emulator.http.get(f"{fal_emulator.url}/fal-ai/flux/requests/x/status", headers=KEY)
    assert time.monotonic() - started >= 0.35


async def fault_pattern(client: httpx.AsyncClient, seed: int) -> list[tuple[int, str | None]]:
    """Submit 30 jobs under every fault at once; list each submit's status and each job's end."""
    await client.put("/_emulator/behaviour", json={
        "seed": seed, "queue_time_s": 0, "processing_time_s": 0, "rate_limit_rate": 0.2,
        "submit_error_rate": 0.2, "ingress_error_rate": 0.1, "stuck_rate": 0.2, "job_failure_rate": 0.3})
    pattern = []
    for _ in range(30):
        submitted = await client.post("/fal-ai/flux/dev", json={"prompt": "x"}, headers=KEY)
        if submitted.status_code != 200:
            pattern.append((submitted.status_code, None))
            continue
        status = await client.get(f"/fal-ai/flux/requests/{submitted.json()['request_id']}/status", headers=KEY)
        body = status.json() if status.status_code == 200 else {}
        pattern.append((status.status_code, body.get("error_type") or body.get("status")))
    return pattern


async def test_fault_decisions_are_deterministic_under_a_seed() -> None:
    transport = httpx.ASGITransport(app=create_app(seed=3))
    async with httpx.AsyncClient(transport=transport, base_url="https://fal.test") as client:
        first = await fault_pattern(client, seed=7)
        await client.post("/_emulator/reset")
        again = await fault_pattern(client, seed=7)
        other = await fault_pattern(client, seed=8)
    assert first == again
    assert first != other
    outcomes = {outcome for _, outcome in first}
    assert {"COMPLETED", "IN_PROGRESS", "runner_disconnected", None} <= outcomes
    assert {429, 500, 503} <= {status for status, _ in first}


@pytest.mark.parametrize(("body", "named"), [
    ({"stuck_rate": 1.5}, "stuck_rate"),
    ({"queue_time_s": -1}, "queue_time_s"),
    ({"ingress_error_status": 500}, "ingress_error_status"),
    ({"submit_error_status": 200}, "submit_error_status"),
    ({"latency_s": "slow"}, "latency_s"),
    ({"rate_limit_rate": True}, "rate_limit_rate"),
    ({"ingress_rate": 0.5}, "ingress_rate"),
    ([0.5], "JSON object"),
    ("{not json", "not valid JSON"),
])
async def test_bad_behaviour_is_rejected_with_422(body: object, named: str) -> None:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="https://fal.test") as client:
        before = (await client.get("/_emulator/behaviour")).json()
        sent = {"content": body} if isinstance(body, str) else {"json": body}
        response = await client.put("/_emulator/behaviour", **sent)
        assert response.status_code == 422
        assert named in response.json()["detail"]
        assert (await client.get("/_emulator/behaviour")).json() == before


async def test_reset_restores_defaults_and_clears_the_log() -> None:
    transport = httpx.ASGITransport(app=create_app(seed=5))
    async with httpx.AsyncClient(transport=transport, base_url="https://fal.test") as client:
        defaults = (await client.get("/_emulator/behaviour")).json()
        changed = (await client.put("/_emulator/behaviour", json={"stuck_rate": 0.5, "latency_s": 0.01})).json()
        await client.post("/fal-ai/flux/dev", json={}, headers=KEY)
        assert changed == {**defaults, "stuck_rate": 0.5, "latency_s": 0.01}
        assert len((await client.get("/_emulator/requests")).json()) == 1
        assert (await client.post("/_emulator/reset")).json() == defaults
        assert (await client.get("/_emulator/requests")).json() == []
    assert defaults["seed"] == 5 and defaults["queue_time_s"] == 0.05


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_process_exits_cleanly_on_stop_signals(fal_emulator_start, stop_signal: signal.Signals) -> None:
    process = fal_emulator_start()
    process.send_signal(stop_signal)
    assert process.wait(timeout=15) == 0


def test_cli_names_a_missing_certificate(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "chaos.emulators.fal", "--port", "8443", "--certfile", str(tmp_path / "nope.pem"),
         "--keyfile", str(tmp_path / "nope-key.pem")],
        capture_output=True, text=True, timeout=30, cwd=Path(__file__).resolve().parents[2])
    assert completed.returncode == 2
    assert "nope.pem" in completed.stderr


async def test_an_oversized_or_too_deep_body_is_a_clear_4xx_never_a_500() -> None:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="https://fal.test", headers=KEY) as client:
        deep = await client.post("/fal-ai/flux/dev", content=b"[" * 100_000 + b"]" * 100_000)
        huge = await client.post("/fal-ai/flux/dev", content=b'{"prompt": "' + b"a" * (2 << 20) + b'"}')
    assert deep.status_code == 422 and "deeply" in deep.json()["detail"]
    assert huge.status_code == 413 and "larger than" in huge.json()["detail"]


async def test_evenly_spaced_submit_errors_fail_that_share_never_more_in_a_row_than_it_needs() -> None:
    transport = httpx.ASGITransport(app=create_app(seed=3))
    async with httpx.AsyncClient(transport=transport, base_url="https://fal.test") as client:
        refused = await client.put("/_emulator/behaviour", json={"submit_error_spacing": "sometimes"})
        await client.put("/_emulator/behaviour", json={"submit_error_rate": 0.75, "submit_error_spacing": "even"})
        answers = [(await client.post("/fal-ai/flux/dev", json={"prompt": "x"}, headers=KEY)).status_code
                   for _ in range(12)]
    assert refused.status_code == 422 and "submit_error_spacing" in refused.text
    assert "".join("F" if status == 500 else "." for status in answers) == ".FFF.FFF.FFF"
