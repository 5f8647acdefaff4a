"""Fixtures of the dashboards tests: the external tools they drive, and one Prometheus with an
empty TSDB whose query API parses PromQL for them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaos.stack.prometheus import running_prometheus
from tests.support import require_tool


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
