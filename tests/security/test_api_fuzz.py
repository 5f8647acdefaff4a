"""Fuzzing the API: no 500s, no crash, responses match the schema, accepted input round-trips.

schemathesis's own CLI (`st run`) walks the OpenAPI schema, bounded in examples and time, with a
valid and an invalid token. Hypothesis then aims at the one free-form part of a request, the
``parameters`` tree: arbitrary JSON including NaN, infinities, overflowing literals, unpaired
surrogates and nesting from 1 to 10,000 levels, plus valid parameter sets that must round-trip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chaos.stack.embedded import EmbeddedStack
from chaos.stack.tokens import mint_access_token
from service.schemas import FalParameters, GenerationRequest

pytestmark = pytest.mark.filterwarnings("error::jwt.warnings.InsecureKeyLengthWarning")

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


# Strings with unpaired surrogates and NUL next to ordinary text; floats with NaN and infinities.
_TEXT = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0xFFFF), max_size=12)
_SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | _TEXT
_KEYS = _TEXT | st.sampled_from(list(FalParameters.model_fields))  # known names, to reach the type checks
ANY_JSON = st.recursive(_SCALARS, lambda children: st.lists(children, max_size=4)
                        | st.dictionaries(_KEYS, children, max_size=4), max_leaves=20)


def _nested(depth: int) -> tuple[str, None]:
    return '{"x": ' + "[" * depth + "]" * depth + "}", None


# (JSON text, the value it encodes, or None for bodies only meant to be refused).
ANY_PARAMETERS_JSON = ANY_JSON.map(lambda value: (json.dumps(value), value)) | st.integers(1, 10_000).map(_nested)


# What the model accepts, each drawn with a chance of being left out.
VALID_PARAMETERS = st.fixed_dictionaries({}, optional={
    "num_images": st.integers(1, 4),
    "image_size": st.sampled_from(["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3",
                                   "landscape_16_9"])
    | st.fixed_dictionaries({"width": st.integers(64, 2048), "height": st.integers(64, 2048)}),
    "seed": st.integers(0, 2**32 - 1),
    "guidance_scale": st.floats(1, 20, allow_nan=False),
    "num_inference_steps": st.integers(1, 50),
    "enable_safety_checker": st.booleans(),
    "output_format": st.sampled_from(["jpeg", "png"]),
    "acceleration": st.sampled_from(["none", "regular", "high"]),
})


def _post_parameters(info, headers: dict[str, str], parameters_json: str) -> httpx.Response:
    body = '{"model_id": "fal-ai/flux/dev", "prompt": "fuzz", "parameters": ' + parameters_json + "}"
    return httpx.post(f"{info.service_url}/api/v1/generations", content=body.encode(), timeout=10,
                      headers={**headers, "Content-Type": "application/json"})


def _assert_accepted_round_trips(info, headers: dict[str, str], response: httpx.Response, sent: object) -> None:
    assert response.status_code in (202, 400, 422), (response.status_code, response.text[:300])
    if response.status_code == 202:
        expected = {k: v for k, v in sent.items() if v is not None}
        assert response.json()["parameters"] == expected
        stored = httpx.get(f"{info.service_url}/api/v1/generations/{response.json()['id']}", headers=headers,
                           timeout=10).json()
        assert stored["parameters"] == expected
    else:
        assert response.json()["detail"]


@given(parameters=ANY_JSON)
@settings(max_examples=150, deadline=None)
def test_request_validation_raises_nothing_but_validation_errors(parameters):
    """In-process and fast: any JSON value as ``parameters`` is accepted or a ValidationError, never a crash."""
    try:
        GenerationRequest.model_validate({"model_id": "m", "prompt": "p", "parameters": parameters})
    except ValidationError:
        pass


@pytest.mark.slow
@given(drawn=ANY_PARAMETERS_JSON)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_parameters_never_get_a_server_error(stack: EmbeddedStack, drawn):
    text, parameters = drawn
    info = stack.info
    headers = {"Authorization": f"Bearer {mint_access_token(info.jwt_secret, info.jwt_issuer)}"}
    response = _post_parameters(info, headers, text)
    if isinstance(parameters, dict):
        _assert_accepted_round_trips(info, headers, response, parameters)
    else:
        assert response.status_code in (400, 422), (response.status_code, response.text[:300])


@pytest.mark.slow
@given(parameters=VALID_PARAMETERS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_valid_parameters_are_accepted_and_round_trip(stack: EmbeddedStack, parameters):
    info = stack.info
    headers = {"Authorization": f"Bearer {mint_access_token(info.jwt_secret, info.jwt_issuer)}"}
    response = _post_parameters(info, headers, json.dumps(parameters))
    assert response.status_code == 202, response.text[:300]
    _assert_accepted_round_trips(info, headers, response, parameters)
