"""schemathesis against our Toxiproxy-compatible server, driven by docs/toxiproxy-openapi.yaml.

The server runs as its own process on a free loopback port; schemathesis's CLI (`st run`) fuzzes
every documented operation, bounded in examples and time, and the test checks its exit code,
its JUnit report (how many cases ran) and that the server still answers afterwards.

Toxiproxy answers a listen failure (port taken, bad address) with a 500 carrying Go's error
text, so generated listen addresses can legitimately produce a 500 on the operations that
bind. A small schemathesis config accepts 500 on exactly those operations, and the test then
reads the HAR report to require that every 500 seen is such a network error and nothing else.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from chaos.stack.processes import ChildProcess, free_port, http_ok, wait_until

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "toxiproxy-openapi.yaml"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
OPERATIONS_THAT_BIND = ["createProxy", "populateProxies", "updateProxy", "patchProxy"]
GO_NETWORK_ERROR = re.compile(r"(listen tcp|lookup )[^\n]*")
DOCUMENTED_OPERATIONS = 16  # the JUnit report has one test case per operation
MIN_REQUESTS = 300  # about 1000 with these settings; far fewer means generation broke down

# Accept 500 where Toxiproxy documents it (listen failures); the HAR audit below keeps it honest.
SCHEMATHESIS_CONFIG = f"""
[[operations]]
include-operation-id = {json.dumps(OPERATIONS_THAT_BIND)}
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "500"]
"""


@pytest.fixture
def toxiproxy_url(tmp_path: Path) -> Iterator[str]:
    """Our server as a child process, with one proxy and one toxic for the schema's examples."""
    port = free_port()
    server = ChildProcess("toxiproxy", [sys.executable, "-m", "chaos.toxiproxy", "--host", "127.0.0.1",
                                        "--port", str(port), "--proxy-metrics"], log_dir=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(http_ok(f"{url}/version"), timeout_s=20, what="toxiproxy", process=server.popen)
        httpx.post(f"{url}/proxies", timeout=5, json={
            "name": "fuzzed", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}).raise_for_status()
        httpx.post(f"{url}/proxies/fuzzed/toxics", timeout=5, json={"type": "latency"}).raise_for_status()
        yield url
    finally:
        server.stop()


def run_schemathesis(url: str, report_dir: Path) -> subprocess.CompletedProcess:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    config = report_dir / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    return subprocess.run(
        [st, "--config-file", str(config), "run", str(SCHEMA), "--url", url, "--checks", CHECKS,
         "--max-examples", "30", "--seed", "1", "--request-timeout", "10",
         "--suppress-health-check", "all", "--report", "junit,har", "--report-dir", str(report_dir)],
        capture_output=True, text=True, timeout=180, cwd=report_dir,
    )


def fuzzed_test_cases(report_dir: Path) -> int:
    junit = next(report_dir.glob("junit*.xml"))
    return len(ElementTree.parse(junit).getroot().findall(".//testcase"))


def exchanges(report_dir: Path) -> list[dict]:
    """Every request schemathesis sent, with its response (HAR entries)."""
    return json.loads(next(report_dir.glob("har*.json")).read_text())["log"]["entries"]


def server_errors(entries: list[dict]) -> list[str]:
    """The `error` text of every 5xx response."""
    errors = []
    for entry in entries:
        if entry["response"]["status"] >= 500:
            body = entry["response"]["content"].get("text", "")
            try:
                errors.append(json.loads(body)["error"])
            except (ValueError, KeyError, TypeError):
                errors.append(body)
    return errors


@pytest.mark.slow
def test_fuzzing_the_toxiproxy_api_finds_no_failure(toxiproxy_url: str, tmp_path: Path):
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    result = run_schemathesis(toxiproxy_url, report_dir)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert fuzzed_test_cases(report_dir) == DOCUMENTED_OPERATIONS
    entries = exchanges(report_dir)
    assert len(entries) >= MIN_REQUESTS
    unexpected = [error for error in server_errors(entries) if not GO_NETWORK_ERROR.fullmatch(error)]
    assert unexpected == [], "5xx responses that are not Toxiproxy listen/lookup failures"
    assert httpx.get(f"{toxiproxy_url}/version", timeout=5).json() == {"version": "2.12.0"}
