"""genchaos as a pytest plugin, loaded through the ``pytest11`` entry point once genchaos is installed.

Fixtures:

- ``genchaos_stack_hardened``, ``genchaos_stack_as_written``: the embedded stack (an EmbeddedStack) of
  that resilience profile, session-scoped: started the first time a test uses it, stopped when the
  session ends.
- ``genchaos_stack``: the stack of ``--genchaos-profile`` (default hardened), or of the profile given
  by indirect parametrisation: ``@pytest.mark.parametrize("genchaos_stack", ["as_written"], indirect=True)``.
- ``genchaos_token``: ``genchaos_token(sub=None, **claims)`` mints a user access token for ``genchaos_stack``.
- ``genchaos_faults``: faults on ``genchaos_stack`` held for a ``with`` block (chaos.plugin.faults).
- ``genchaos_scenario``: ``genchaos_scenario("fal_down", profile="hardened")`` runs a scenario and returns
  its verdict; ``genchaos_scenario.assert_passes(...)`` fails the test unless it passed
  (chaos.plugin.scenarios).

The harness is imported only when one of these fixtures is first used, so loading the plugin costs
nothing to a test suite that never asks for a stack.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from chaos.plugin.faults import FaultControl
    from chaos.plugin.scenarios import ScenarioRunner
    from chaos.stack.embedded import EmbeddedStack

DEFAULT_PROFILE = "hardened"
DEFAULT_TIMING = "fast"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("genchaos", "genchaos embedded stacks, faults and scenarios")
    group.addoption("--genchaos-profile", default=DEFAULT_PROFILE, metavar="PROFILE",
                    help="resilience profile of genchaos_stack and genchaos_scenario when a test names none "
                         f"(default: {DEFAULT_PROFILE})")
    group.addoption("--genchaos-service", default=None, metavar="CONTRACT",
                    help="contract file of the service the stacks run (default: the reference service)")
    group.addoption("--genchaos-timing", default=DEFAULT_TIMING, metavar="PRESET",
                    help="timing preset of the stacks' services; scenarios keep their own "
                         f"(default: {DEFAULT_TIMING}, short timings for tests)")


def pytest_configure(config: pytest.Config) -> None:
    """An unknown profile or timing stops the session before any test runs. The defaults are known to
    be valid, so the harness is imported here only when an option was changed."""
    profile, timing = config.getoption("genchaos_profile"), config.getoption("genchaos_timing")
    if (profile, timing) == (DEFAULT_PROFILE, DEFAULT_TIMING):
        return
    from chaos.plugin.stacks import resolve_profile, resolve_timing

    try:
        resolve_profile(profile)
        resolve_timing(timing)
    except ValueError as exc:
        raise pytest.UsageError(f"genchaos: {exc}") from None


def _started_stack(config: pytest.Config, profile: str) -> Iterator[EmbeddedStack]:
    from chaos.contract.model import load_contract
    from chaos.plugin.stacks import resolve_profile, resolve_timing
    from chaos.stack.embedded import EmbeddedStack

    timing = resolve_timing(config.getoption("genchaos_timing"))
    contract_path = config.getoption("genchaos_service")
    contract = load_contract(contract_path) if contract_path else None
    with EmbeddedStack(profile=resolve_profile(profile), timing=timing, contract=contract) as stack:
        yield stack


@pytest.fixture(scope="session")
def genchaos_stack_hardened(pytestconfig: pytest.Config) -> Iterator[EmbeddedStack]:
    """The embedded stack running the hardened profile, for the whole session."""
    yield from _started_stack(pytestconfig, "hardened")


@pytest.fixture(scope="session")
def genchaos_stack_as_written(pytestconfig: pytest.Config) -> Iterator[EmbeddedStack]:
    """The embedded stack running the incident report's code as written, for the whole session."""
    yield from _started_stack(pytestconfig, "as_written")


@pytest.fixture
def genchaos_stack(request: pytest.FixtureRequest) -> EmbeddedStack:
    """The session's stack of the parametrised profile, else of ``--genchaos-profile``."""
    from chaos.plugin.stacks import stack_fixture

    profile = getattr(request, "param", request.config.getoption("genchaos_profile"))
    return request.getfixturevalue(stack_fixture(profile))


@pytest.fixture
def genchaos_token(genchaos_stack: EmbeddedStack) -> Callable[..., str]:
    """``genchaos_token(sub=None, *, expires_in_s=3600, **claims)``: an access token the stack's service
    accepts, for a new user unless ``sub`` is given; ``claims`` override any field."""
    from chaos.stack.tokens import mint_access_token

    info = genchaos_stack.info
    return functools.partial(mint_access_token, info.jwt_secret, info.jwt_issuer)


@pytest.fixture
def genchaos_faults(genchaos_stack: EmbeddedStack) -> Iterator[FaultControl]:
    """Fault control on ``genchaos_stack``; every fault is rolled back by the end of the test."""
    from chaos.plugin.faults import FaultControl

    control = FaultControl(genchaos_stack.info)
    try:
        yield control
    finally:
        control.close()


@pytest.fixture
def genchaos_scenario(request: pytest.FixtureRequest) -> ScenarioRunner:
    """Run a scenario on the stack of the profile it names (default ``--genchaos-profile``)."""
    from chaos.plugin.scenarios import ScenarioRunner
    from chaos.plugin.stacks import stack_fixture

    return ScenarioRunner(lambda profile: request.getfixturevalue(stack_fixture(profile)),
                          default_profile=request.config.getoption("genchaos_profile"))
