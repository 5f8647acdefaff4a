"""Which embedded stack a test means: profile and timing names (or their older aliases, "report" for
both) checked against the stack's own, and the session fixture that holds each profile's stack."""

from __future__ import annotations

from collections.abc import Callable

from chaos.contract.names import canonical_profile, canonical_timing
from chaos.stack.embedded import PROFILES, TIMINGS

# The session fixture holding each profile's stack (chaos.plugin defines them).
STACK_FIXTURES = {"hardened": "genchaos_stack_hardened", "as_written": "genchaos_stack_as_written"}


def _known(name: str, known: tuple[str, ...], canonical: Callable[[str], str], what: str) -> str:
    if canonical(name) not in known:
        raise ValueError(f"unknown genchaos {what} {name!r}; choose one of {', '.join(known)}")
    return canonical(name)


def resolve_profile(name: str) -> str:
    """The current name of a resilience profile; ValueError naming the choices when there is none."""
    return _known(name, PROFILES, canonical_profile, "profile")


def resolve_timing(name: str) -> str:
    """The current name of a timing preset; ValueError naming the choices when there is none."""
    return _known(name, TIMINGS, canonical_timing, "timing")


def stack_fixture(profile: str) -> str:
    """The name of the session fixture holding the stack of ``profile``."""
    name = resolve_profile(profile)
    if name not in STACK_FIXTURES:
        raise ValueError(f"no genchaos stack fixture serves profile {name!r}")
    return STACK_FIXTURES[name]
