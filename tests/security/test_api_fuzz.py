"""schemathesis against the service's own OpenAPI schema: no 500s, no crash, responses match the schema.

It runs schemathesis's own CLI (`st run`), bounded in examples and time, with a valid and an
invalid token, and checks its exit code and its JUnit report.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.tokens import mint_access_token

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def run_schemathesis(stack: EmbeddedStack, token: str, report_dir: Path, checks: str) -> subprocess.CompletedProcess:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    return subprocess.run(
        [st, "run", f"{stack.info.service_url}/openapi.json", "--checks", checks,
         "--header", f"Authorization: Bearer {token}", "--max-examples", "30", "--seed", "1",
         "--request-timeout", "10", "--phases", "examples,coverage,fuzzing",
         "--report", "junit", "--report-dir", str(report_dir), "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=300,
    )


def fuzzed_test_cases(report_dir: Path) -> int:
    junit = next(report_dir.glob("*.xml"))
    return len(ElementTree.parse(junit).getroot().findall(".//testcase"))


@pytest.mark.slow
def test_fuzzing_with_a_valid_token_finds_no_failure(stack: EmbeddedStack, tmp_path: Path):
    token = mint_access_token(stack.info.jwt_secret, stack.info.jwt_issuer)
    result = run_schemathesis(stack, token, tmp_path, CHECKS)
    assert result.returncode == 0, result.stdout[-4000:]
    assert fuzzed_test_cases(tmp_path) >= 4  # every operation of the API was exercised


@pytest.mark.slow
def test_fuzzing_with_an_invalid_token_finds_no_server_error(stack: EmbeddedStack, tmp_path: Path):
    result = run_schemathesis(stack, "not-a-valid-token", tmp_path, "not_a_server_error")
    assert result.returncode == 0, result.stdout[-4000:]
    assert httpx.get(f"{stack.info.service_url}/healthz", timeout=5).status_code == 200
