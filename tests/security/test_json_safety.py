"""The storability check walks any depth without recursion and names what PostgreSQL would refuse."""

from __future__ import annotations

import json

import pytest

from service.json_safety import MAX_JSON_DEPTH, json_problem


def _nested(depth: int) -> list:
    root = current = []
    for _ in range(depth - 1):
        current.append([])
        current = current[0]
    return root


@pytest.mark.parametrize("value, word", [
    ({"a": [1, {"b": float("nan")}]}, "finite"),
    (json.loads('{"x": 1e400}'), "finite"),
    ([float("-inf")], "finite"),
    ({"\ud800": 1}, "surrogate"),
    ({"k": ["ok", "\udfff"]}, "surrogate"),
    ({"k": "a\x00b"}, "NUL"),
    (_nested(MAX_JSON_DEPTH + 1), "levels"),
    (_nested(200_000), "levels"),  # far beyond the recursion limit: no RecursionError
])
def test_what_postgresql_cannot_store_is_named(value, word):
    problem = json_problem(value)
    assert problem is not None and word in problem


@pytest.mark.parametrize("value", [{}, {"seed": 2**40, "s": "caf\u00e9 \U0001f600"}, _nested(MAX_JSON_DEPTH), 1.5e308])
def test_storable_values_pass(value):
    assert json_problem(value) is None
