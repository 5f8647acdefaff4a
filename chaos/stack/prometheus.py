"""A real Prometheus on 127.0.0.1 and a free port, with its own fresh storage: how a scenario's own
scrapes, recording rules and alerts are evaluated (chaos/run/slo_rules.py), and what the dashboard
tests run their queries on."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from chaos.stack.processes import ChildProcess, free_port, http_ok, wait_until

READY_TIMEOUT_S = 30.0


def prometheus_binary() -> str | None:
    """The prometheus server on PATH (Debian's `prometheus` package), or None."""
    return shutil.which("prometheus")


@contextmanager
def running_prometheus(binary: str, work_dir: Path, scrape_configs: list[dict] | None = None,
                       rule_files: list[Path] | None = None, interval: str = "1s",
                       evaluation_interval: str | None = None) -> Iterator[str]:
    """Prometheus scraping ``scrape_configs`` and evaluating ``rule_files``; yields its base URL and
    always stops it."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": evaluation_interval or interval},
        "rule_files": [str(path) for path in rule_files or []],
        "scrape_configs": scrape_configs or [],
    }
    config_file = work_dir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    prometheus = ChildProcess("prometheus", [
        binary, f"--config.file={config_file}", f"--storage.tsdb.path={work_dir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"], log_dir=work_dir)
    try:
        wait_until(http_ok(f"{url}/-/ready"), timeout_s=READY_TIMEOUT_S, what="prometheus", process=prometheus.popen)
        yield url
    finally:
        prometheus.stop()
