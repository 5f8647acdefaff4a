"""A real PostgreSQL server in a temp directory, on a free port, for the embedded stack and tests.

PostgreSQL refuses to run as root, so when we are root the cluster is created and run as the
``postgres`` user. fsync is switched off because the data is thrown away; a killed server (tests
crash it under load) still keeps every commit it acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import asyncpg

from chaos.processes import StackError, free_port

# No fsync: the data is thrown away and the machine does not crash under it. synchronous_commit stays
# on, so a commit is in the kernel before the client hears of it and survives `kill()` (an immediate
# shutdown, which tests use to crash the database under load).
_FAST_SETTINGS = "-c fsync=off -c full_page_writes=off -c max_connections=200"
USER = "genchaos"
PASSWORD = "genchaos"


def _as_postgres_user() -> list[str]:
    """Command prefix that drops root to the ``postgres`` user (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise StackError("running as root needs a 'postgres' user to run PostgreSQL as") from exc
    return ["runuser", "-u", "postgres", "--"]


class PostgresServer:
    """A started PostgreSQL cluster; ``dsn`` connects as a superuser to database ``genchaos``."""

    def __init__(self, data_dir: Path, port: int, owns_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = port
        self._owns_dir = owns_dir

    @property
    def dsn(self) -> str:
        return self.dsn_for("genchaos")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, base_dir: Path | None = None) -> PostgresServer:
        """initdb, start on a free port, create the ``genchaos`` database; clean up if any step fails."""
        for tool in ("initdb", "pg_ctl"):
            if shutil.which(tool) is None:
                raise StackError(f"PostgreSQL's '{tool}' is not on PATH")
        root = Path(tempfile.mkdtemp(prefix="genchaos-pg-", dir=base_dir))
        root.chmod(0o755)
        data_dir = root / "data"
        prefix = _as_postgres_user()
        if prefix:
            shutil.chown(root, "postgres", "postgres")
        pwfile = root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if prefix:
            shutil.chown(pwfile, "postgres", "postgres")
        server = cls(data_dir, free_port(), root)
        try:
            _run([*prefix, "initdb", "-D", str(data_dir), "-U", USER, f"--pwfile={pwfile}",
                  "-A", "scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C"], "initdb")
            server.restart()
            asyncio.run(server._create_database_on(server.dsn_for("postgres"), "genchaos"))
        except BaseException:
            server.stop()
            raise
        return server

    async def create_database(self, name: str) -> str:
        """A fresh, empty database on this server; returns its DSN (tests use one per test)."""
        await self._create_database_on(self.dsn, name)
        return self.dsn_for(name)

    @staticmethod
    async def _create_database_on(dsn: str, name: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    def kill(self) -> None:
        """Stop the server abruptly (as a crash would), keeping its data for ``restart``."""
        subprocess.run([*_as_postgres_user(), "pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)

    def restart(self) -> None:
        """Start the server (again, after ``kill``) on its port and data directory."""
        _run([*_as_postgres_user(), "pg_ctl", "-D", str(self.data_dir), "-l", str(self._owns_dir / "postgres.log"),
              "-w", "-t", "60", "-o", f"-p {self.port} -h 127.0.0.1 -k {self._owns_dir} {_FAST_SETTINGS}", "start"],
             "pg_ctl start")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        if (self.data_dir / "postmaster.pid").exists():
            self.kill()
        shutil.rmtree(self._owns_dir, ignore_errors=True)


def _run(argv: list[str], what: str) -> None:
    """Run a PostgreSQL tool in its own process group, so an interruption (Ctrl-C, SIGTERM) kills all of
    it, including what ``runuser`` started, instead of leaving an ``initdb`` or ``postgres`` behind."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=120)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if process.returncode != 0:
        raise StackError(f"{what} failed (exit {process.returncode}): {(stderr or stdout).strip()[-800:]}")
