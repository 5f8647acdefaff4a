"""The pytest plugin as a user meets it: a throwaway project with no conftest, whose tests use only the
fixtures that installing genchaos registers (through the `pytest11` entry point), run in a pytest
subprocess. One embedded stack serves the whole inner session."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER_TESTS = '''
import time
from pathlib import Path

import httpx
import pytest


def wait_until(predicate, what, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"not {what} after {timeout_s} s"
        time.sleep(0.1)


def listing_seconds(stack, token):
    """How long the service takes to list a user's generations (one database round trip at least)."""
    started = time.monotonic()
    response = httpx.get(f"{stack.info.service_url}/api/v1/generations",
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return time.monotonic() - started


def fal_state(stack):
    return httpx.get(f"{stack.info.service_url}/readyz", timeout=10).json()["dependencies"]["fal"]["state"]


@pytest.mark.parametrize("genchaos_stack", ["hardened"], indirect=True)
def test_a_generation_completes_for_a_minted_token(genchaos_stack, genchaos_token):
    base, headers = genchaos_stack.info.service_url, {"Authorization": f"Bearer {genchaos_token()}"}
    accepted = httpx.post(f"{base}/api/v1/generations", headers=headers, timeout=10,
                          json={"model_id": "fal-ai/flux/dev", "prompt": "a lighthouse at dusk"})
    assert accepted.status_code == 202, accepted.text
    url = f"{base}/api/v1/generations/{accepted.json()['id']}"
    wait_until(lambda: httpx.get(url, headers=headers, timeout=10).json()["status"] == "completed",
               "completed", timeout_s=30)


def test_a_database_toxic_slows_the_service_only_while_held(genchaos_stack, genchaos_token, genchaos_faults):
    token = genchaos_token()
    assert listing_seconds(genchaos_stack, token) < 0.5
    with genchaos_faults.toxic("database", "latency", latency=500) as window:
        assert listing_seconds(genchaos_stack, token) >= 0.5
    assert listing_seconds(genchaos_stack, token) < 0.5
    assert genchaos_faults.controller.toxics("postgres") == {}
    assert (window.dependency, window.kind) == ("database", "latency")


def test_a_catalogue_fault_is_seen_by_the_service_then_taken_back(genchaos_stack, genchaos_faults):
    with genchaos_faults.from_scenario("fal_down") as windows:
        wait_until(lambda: fal_state(genchaos_stack) == "down", "fal down")
    assert [w.description for w in windows] == ["fal proxy down"]
    wait_until(lambda: fal_state(genchaos_stack) == "up", "fal up again")


LEFT_ON = []


def test_a_fault_left_on_by_a_test(genchaos_faults):
    LEFT_ON.append(genchaos_faults.down("storage"))
    LEFT_ON[0].__enter__()  # never left, as a careless test might
    assert not genchaos_faults.controller.is_enabled("storage")


def test_is_rolled_back_before_the_next_test(genchaos_faults):
    assert genchaos_faults.controller.is_enabled("storage")
    LEFT_ON.pop().__exit__(None, None, None)  # tidy: no generator left to be collected at exit


def test_a_steady_scenario_passes_on_hardened(genchaos_scenario):
    run = genchaos_scenario.assert_passes(Path(__file__).parent / "steady.yaml", profile="hardened")
    assert run.result.metrics["requests"] >= 8


def test_a_scenario_whose_check_cannot_hold(genchaos_scenario):
    genchaos_scenario.assert_passes(Path(__file__).parent / "impossible.yaml")
'''

STEADY_SCENARIO = """
name: steady
description: A few seconds of steady traffic and no fault; everything succeeds.
load: {rate_per_s: 3, duration_s: 4, drain_s: 15}
checks:
  - {metric: success_rate, min: 0.5}
  - {metric: rate_503, max: 0}
  - {metric: rate_500, max: 0}
  - {metric: lost_generations, max: 0}
"""
IMPOSSIBLE_SCENARIO = """
name: impossible_breaker
description: No fault at all, yet the breaker must open; a check that cannot hold.
profiles: [hardened]
load: {rate_per_s: 2, duration_s: 3, drain_s: 10}
checks:
  - {metric: breaker_opened, equals: true, name: breaker_must_open}
"""


@pytest.mark.slow
@pytest.mark.chaos
def test_a_project_uses_the_stack_faults_tokens_and_scenarios_through_the_plugin(pytester: pytest.Pytester):
    pytester.makepyfile(test_with_genchaos=INNER_TESTS)
    (pytester.path / "steady.yaml").write_text(STEADY_SCENARIO)
    (pytester.path / "impossible.yaml").write_text(IMPOSSIBLE_SCENARIO)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", timeout=300)
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines([
        "*::test_a_scenario_whose_check_cannot_hold FAILED*",
        "E * scenario impossible_breaker on profile hardened (fast timing): failed: a check did not hold",
        "E * not held: breaker_must_open: observed False, expected == True",
    ])


def test_the_fixtures_are_there_without_any_conftest(pytester: pytest.Pytester):
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    for fixture in ("genchaos_stack_hardened ?session scope?", "genchaos_stack_as_written ?session scope?",
                    "genchaos_stack", "genchaos_token", "genchaos_faults", "genchaos_scenario"):
        result.stdout.fnmatch_lines([f"{fixture} -- *chaos/plugin/__init__.py:*"])


def test_an_unknown_profile_stops_the_session_with_the_choices(pytester: pytest.Pytester):
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("--genchaos-profile=reprot", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: genchaos: unknown genchaos profile 'reprot'; choose one of *hardened*"])
    result.stdout.no_fnmatch_line("*passed*")
