"""schemathesis against the service's own OpenAPI schema: no 500s, no crash, responses match the schema."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from chaos.stack import EmbeddedStack
from chaos.tokens import mint_access_token


@pytest.fixture(scope="module")
def service_schema(stack: EmbeddedStack):
    return schemathesis.openapi.from_url(f"{stack.info.service_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("service_schema")

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]
FUZZ_SETTINGS = settings(max_examples=25, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                HealthCheck.function_scoped_fixture])


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_with_a_valid_token(case, stack: EmbeddedStack):
    token = mint_access_token(stack.info.jwt_secret, stack.info.jwt_issuer)
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, timeout=10)


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_with_an_invalid_token(case, stack: EmbeddedStack):
    response = case.call(headers={"Authorization": "Bearer not-a-valid-token"}, timeout=10)
    assert response.status_code < 500


def test_service_survives_the_fuzzing(stack: EmbeddedStack):
    assert httpx.get(f"{stack.info.service_url}/healthz", timeout=5).status_code == 200
