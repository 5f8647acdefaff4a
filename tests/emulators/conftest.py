"""Fixtures for the FAL emulator tests: one emulator process over real TLS per session, and a way to
drive it with the real ``fal_client`` in a child process.

fal-client reads ``FAL_QUEUE_RUN_HOST``/``FAL_RUN_HOST`` once, at import (protocol reference A.1),
so each client run is a fresh ``python -c`` with those variables set before the import.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaos.stack.processes import ChildProcess, free_port, http_ok, wait_until
from chaos.stack.tls import TlsFiles, make_test_ca

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 15
CLIENT_TIMEOUT_S = 40

# Code every client run starts with; the test's code defines ``async def main()`` returning JSON data.
CLIENT_PRELUDE = '''
import asyncio, json, os
import httpx
import fal_client

APP = "fal-ai/flux/dev"
client = fal_client.AsyncClient(key="test-key-id:test-key-secret")

async def set_behaviour(**fields):
    """Change the emulator's behaviour from inside the client run."""
    async with httpx.AsyncClient() as admin:
        response = await admin.put(os.environ["FAL_EMULATOR_URL"] + "/_emulator/behaviour", json=fields)
        response.raise_for_status()

def http_error(exc):
    return {"status_code": exc.status_code, "error_type": exc.error_type, "message": exc.message}
'''
CLIENT_EPILOGUE = "\nprint(json.dumps(asyncio.run(main())))\n"


def start_fal_emulator(tls: TlsFiles, port: int, log_dir: Path, *extra_args: str) -> ChildProcess:
    """Start ``python -m chaos.emulators.fal`` and wait until its health endpoint answers."""
    child = ChildProcess(f"fal-emulator-{port}", [
        sys.executable, "-m", "chaos.emulators.fal", "--host", "127.0.0.1", "--port", str(port),
        "--certfile", str(tls.server_cert), "--keyfile", str(tls.server_key), *extra_args], log_dir=log_dir)
    try:
        wait_until(http_ok(f"https://127.0.0.1:{port}/_emulator/health", ca_file=str(tls.ca_cert)),
                   timeout_s=START_TIMEOUT_S, what="FAL emulator", process=child.popen)
    except BaseException:
        child.stop()
        raise
    return child


@dataclass
class FalEmulator:
    """A running FAL emulator process and the helpers tests drive it with."""

    url: str  # https://127.0.0.1:PORT
    tls: TlsFiles
    http: httpx.Client  # trusts the emulator's CA; for admin calls and raw protocol requests

    @property
    def host(self) -> str:
        return self.url.removeprefix("https://")

    def set_behaviour(self, **fields: Any) -> dict[str, Any]:
        response = self.http.put(f"{self.url}/_emulator/behaviour", json=fields)
        assert response.status_code == 200, response.text
        return response.json()

    def requests(self, kind: str | None = None) -> list[dict[str, Any]]:
        entries = self.http.get(f"{self.url}/_emulator/requests").json()
        return [entry for entry in entries if kind is None or entry["kind"] == kind]

    def run_client(self, code: str) -> Any:
        """Run ``code`` (defining ``async def main()``) with the real fal_client; return what main returned."""
        environment = {
            **os.environ,
            "FAL_QUEUE_RUN_HOST": self.host,
            "FAL_RUN_HOST": f"{self.host}/_run",
            "SSL_CERT_FILE": str(self.tls.ca_bundle),
            "NO_PROXY": "127.0.0.1,localhost",
            "FAL_EMULATOR_URL": self.url,
        }
        environment.pop("FAL_KEY", None)
        script = CLIENT_PRELUDE + textwrap.dedent(code) + CLIENT_EPILOGUE
        completed = subprocess.run([sys.executable, "-c", script], env=environment, cwd=REPO_ROOT,
                                   capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
        assert completed.returncode == 0, f"fal_client run failed:\n{completed.stderr}"
        return json.loads(completed.stdout.splitlines()[-1])


@pytest.fixture(scope="session")
def fal_emulator_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_test_ca(tmp_path_factory.mktemp("fal-emulator-tls"))


@pytest.fixture(scope="session")
def fal_emulator_server(fal_emulator_tls: TlsFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FalEmulator]:
    port = free_port()
    child = start_fal_emulator(fal_emulator_tls, port, tmp_path_factory.mktemp("fal-emulator-logs"), "--seed", "1234")
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=fal_emulator_tls.ca_cert), timeout=10) as http:
            yield FalEmulator(url=f"https://127.0.0.1:{port}", tls=fal_emulator_tls, http=http)
    finally:
        child.stop()


@pytest.fixture
def fal_emulator_start(fal_emulator_tls: TlsFiles, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start extra emulator processes (on free ports) that the test owns; all are stopped afterwards."""
    started: list[ChildProcess] = []

    def start(*extra_args: str) -> subprocess.Popen:
        started.append(start_fal_emulator(fal_emulator_tls, free_port(), tmp_path, *extra_args))
        return started[-1].popen

    try:
        yield start
    finally:
        for child in started:
            child.stop()


@pytest.fixture
def fal_emulator(fal_emulator_server: FalEmulator) -> FalEmulator:
    """The session's emulator with default behaviour and an empty request log."""
    response = fal_emulator_server.http.post(f"{fal_emulator_server.url}/_emulator/reset")
    assert response.status_code == 200, response.text
    return fal_emulator_server
