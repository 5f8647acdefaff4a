"""`python -m chaos.toxiproxy`: flags, --config, signals and exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
import pytest
from toxiproxy_support import free_port

COMMAND = [sys.executable, "-m", "chaos.toxiproxy"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(COMMAND + list(args), capture_output=True, text=True, timeout=30)


@pytest.fixture
def launch():
    processes: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[subprocess.Popen, str]:
        process = subprocess.Popen(COMMAND + ["--port", "0", *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        processes.append(process)
        line = process.stdout.readline()
        port = json.loads(line)["port"]
        return process, f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(10)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_runs_until_signal_and_closes_listeners(launch, signum):
    process, url = launch()
    proxy = httpx.post(f"{url}/proxies", json={"name": "p", "listen": "127.0.0.1:0", "upstream": "x:1"}).json()
    process.send_signal(signum)
    assert process.wait(10) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/version")
    port = int(proxy["listen"].rsplit(":", 1)[1])
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/")


def test_config_file_and_proxy_metrics(launch, tmp_path):
    port = free_port()
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "db", "listen": f"127.0.0.1:{port}", "upstream": "localhost:5432"},
                                  {"name": "off", "listen": "127.0.0.1:0", "upstream": "x:1", "enabled": False}]))
    process, url = launch("--config", str(config), "--proxy-metrics")
    proxies = httpx.get(f"{url}/proxies").json()
    assert proxies["db"]["listen"] == f"127.0.0.1:{port}" and proxies["off"]["enabled"] is False
    assert httpx.get(f"{url}/metrics").status_code == 200


@pytest.mark.parametrize("args, fragment", [
    (["--port", "notaport"], "invalid port"),
    (["--bogus"], "unrecognized arguments"),
    (["--config", "/nonexistent/file.json"], "cannot read config file"),
])
def test_bad_flags_exit_2_with_one_line(args, fragment):
    result = run(*args)
    assert result.returncode == 2
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_config_contents_exit_2(tmp_path):
    for content, fragment in [("{", "not valid JSON"), ('{"a":1}', "JSON array"),
                              ('[{"name":"x"}]', "missing required field: upstream at proxy 1")]:
        config = tmp_path / "c.json"
        config.write_text(content)
        result = run("--port", "0", "--config", str(config))
        assert result.returncode == 2, result.stderr
        assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_api_port_in_use_exit_2():
    import socket
    with socket.create_server(("127.0.0.1", 0)) as blocker:
        result = run("--port", str(blocker.getsockname()[1]))
    assert result.returncode == 2 and "address already in use" in result.stderr.lower()


def test_version_flag():
    result = run("-version")
    assert result.returncode == 0 and result.stdout == "toxiproxy-server version 2.12.0\n"


def test_main_function_returns_exit_code():
    from chaos.toxiproxy import main
    assert main(["--bogus"]) == 2
