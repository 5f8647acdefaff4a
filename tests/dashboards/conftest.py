"""Fixtures of the dashboards tests: the external tools they drive, and one Prometheus with an
empty TSDB whose query API parses PromQL for them."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboards.promtools import running_prometheus


def require_tool(name: str) -> str:
    """Path of a tool on PATH or beside this interpreter (pip-installed tools such as
    actionlint land there); skip without it, but fail when GENCHAOS_REQUIRE_TOOLS=1 (CI)."""
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path:
        return path
    reason = f"'{name}' is not installed (promtool, prometheus, docker-compose: Debian packages; actionlint: pip)"
    if os.environ.get("GENCHAOS_REQUIRE_TOOLS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return require_tool("prometheus")


@pytest.fixture(scope="session")
def docker_compose() -> str:
    return require_tool("docker-compose")


@pytest.fixture(scope="session")
def actionlint() -> str:
    return require_tool("actionlint")


@pytest.fixture(scope="session")
def prometheus_parser(prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Prometheus with nothing to scrape: its /api/v1/query is PromQL's own parser."""
    with running_prometheus(prometheus_binary, tmp_path_factory.mktemp("prometheus-parser")) as url:
        yield url
