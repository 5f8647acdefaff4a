"""What PostgreSQL's text and jsonb can store, checked without recursion (so no input depth can crash it).

jsonb refuses NaN and infinities, and every text column refuses NUL characters and unpaired UTF-16
surrogates (which JSON's ``\\ud800`` escapes can produce); without these checks such a request would
reach the database and come back as a 500.
"""

from __future__ import annotations

import math
import re
from typing import Any

MAX_JSON_DEPTH = 8
_UNPAIRED_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    if "\x00" in text:
        return "must not contain NUL characters"
    if _UNPAIRED_SURROGATE.search(text):
        return "must not contain unpaired surrogates (\\ud800-\\udfff)"
    return None


def json_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why the decoded JSON ``value`` cannot be stored, or None: nesting beyond ``max_depth`` containers,
    a non-finite number (NaN, Infinity, or a literal like 1e400 that overflows to infinity), or a string
    or key that ``text_problem`` refuses. Walks with an explicit stack, never recursion."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                return f"must not nest more than {max_depth} levels of objects and arrays"
            if isinstance(item, dict):
                for key in item:
                    if problem := text_problem(key):
                        return f"keys {problem}"
                pending.extend((child, depth + 1) for child in item.values())
            else:
                pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, float) and not math.isfinite(item):
            return "numbers must be finite (no NaN, Infinity, or values beyond ±1.7e308)"
        elif isinstance(item, str) and (problem := text_problem(item)):
            return problem
    return None
