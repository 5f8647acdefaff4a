"""The embedded stack: PostgreSQL, the FAL and Storage emulators, the Toxiproxy-compatible server
and the service, each its own process on 127.0.0.1, wired so that the service reaches every
dependency only through a Toxiproxy proxy. Everything is stopped and deleted on exit, even on failure.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

import jwt

from chaos.stack import interrupts
from chaos.stack.faults import FaultController
from chaos.stack.postgres import PostgresServer
from chaos.stack.processes import ChildProcess, StackError, free_port, http_ok, wait_until
from chaos.stack.tls import make_test_ca
from service.settings import Profile, Timing, canonical_profile, canonical_timing

# The service owns these names (and their older aliases); the harness derives its choices from them.
PROFILES: tuple[str, ...] = get_args(Profile)
TIMINGS: tuple[str, ...] = get_args(Timing)
JWT_ISSUER = "http://127.0.0.1/auth/v1"
FAL_KEY = "genchaos-key-id:genchaos-key-secret"
START_TIMEOUT_S = 60.0


@dataclass
class StackInfo:
    """What a client of a running stack needs; written as the stack file (JSON)."""

    service_url: str
    toxiproxy_url: str
    proxies: dict[str, str]
    database_url: str  # the service's view: through the `postgres` proxy
    fal_url: str  # https://host:port of the `fal` proxy (FAL_QUEUE_RUN_HOST; FAL_RUN_HOST adds /_run)
    fal_key: str
    storage_url: str  # Supabase project URL through the `storage` proxy; storage lives under /storage/v1
    service_key: str
    ca_bundle: str
    jwt_secret: str
    jwt_issuer: str
    profile: str
    timing: str
    fal_admin_url: str  # the FAL emulator itself: admin calls must not pass through faults
    storage_admin_url: str
    database_direct_url: str
    traces_file: str | None = None
    service_pid: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def dump(self, path: Path | str) -> None:
        """Write the stack file atomically, so a reader never sees half of it."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path | str) -> StackInfo:
        """Read a stack file; a missing or malformed one is a StackError naming the problem."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise StackError(f"stack file {path} does not exist") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise StackError(f"stack file {path} is not readable JSON: {exc}") from exc
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = sorted(required - data.keys())
        if missing:
            raise StackError(f"stack file {path} lacks keys: {', '.join(missing)}")
        info = cls(**{k: v for k, v in data.items() if k in names})
        info.profile, info.timing = canonical_profile(str(info.profile)), canonical_timing(str(info.timing))
        return info


def _service_key(secret: str) -> str:
    """A service_role key like a Supabase project's: an HS256 JWT without a user."""
    return jwt.encode({"iss": "supabase", "role": "service_role", "ref": "genchaos",
                       "iat": int(time.time()), "exp": int(time.time()) + 10 * 365 * 86400}, secret, algorithm="HS256")


def _known_profile(name: str) -> str:
    """The current name of a profile given by its name or an alias; StackError for anything else."""
    if canonical_profile(name) not in PROFILES:
        raise StackError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return canonical_profile(name)


def _known_timing(name: str) -> str:
    """The current name of a timing preset given by its name or an alias; StackError for anything else."""
    if canonical_timing(name) not in TIMINGS:
        raise StackError(f"unknown timing preset {name!r}; choose one of {', '.join(TIMINGS)}")
    return canonical_timing(name)


class EmbeddedStack:
    """Start the whole stack as a context manager; ``info`` describes it while it runs."""

    def __init__(self, base_dir: Path | None = None, profile: str = "hardened", timing: str = "fast",
                 service_env: dict[str, str] | None = None, service_root: Path | None = None) -> None:
        profile, timing = _known_profile(profile), _known_timing(timing)
        self._base_parent = base_dir
        self._profile = profile
        self._timing = timing
        self._service_env = dict(service_env or {})
        # A directory holding a `service` package to run instead of the project's own (a patched copy,
        # say); it may be swapped between service restarts.
        self.service_root = service_root
        self._children: list[ChildProcess] = []
        self._service: ChildProcess | None = None
        self._postgres: PostgresServer | None = None
        self._root: Path | None = None
        self.info: StackInfo | None = None

    def __enter__(self) -> EmbeddedStack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def log_dir(self) -> Path:
        assert self._root is not None
        return self._root / "logs"

    def _start(self) -> None:
        with interrupts.deferred():  # an interrupt now must find `_root` set, for close() to remove it
            self._root = Path(tempfile.mkdtemp(prefix="genchaos-stack-", dir=self._base_parent))
        self.log_dir.mkdir()
        tls = make_test_ca(self._root / "tls")
        jwt_secret = secrets.token_urlsafe(32)
        service_key = _service_key(jwt_secret)

        fal_port, storage_port = free_port(), free_port()
        fal = self._spawn("fal-emulator", ["-m", "chaos.emulators.fal", "--host", "127.0.0.1", "--port", str(fal_port),
                                           "--certfile", str(tls.server_cert), "--keyfile", str(tls.server_key),
                                           f"--key={FAL_KEY}"])
        storage = self._spawn("storage-emulator", ["-m", "chaos.emulators.storage", "--host", "127.0.0.1",
                                                   "--port", str(storage_port), "--data-dir", str(self._root / "storage"),
                                                   # `=` keeps a secret that starts with "-" from reading as a flag
                                                   f"--service-key={service_key}", f"--jwt-secret={jwt_secret}"])
        toxiproxy_url = os.environ.get("TOXIPROXY_URL")
        toxiproxy = None
        if not toxiproxy_url:
            toxiproxy_port = free_port()
            toxiproxy_url = f"http://127.0.0.1:{toxiproxy_port}"
            toxiproxy = self._spawn("toxiproxy", ["-m", "chaos.toxiproxy", "--host", "127.0.0.1",
                                                  "--port", str(toxiproxy_port), "--proxy-metrics"])
        self._postgres = PostgresServer.start()  # its own temp dir: the `postgres` user cannot enter ours

        fal_admin_url = f"https://127.0.0.1:{fal_port}"
        storage_admin_url = f"http://127.0.0.1:{storage_port}"
        wait_until(http_ok(f"{fal_admin_url}/_emulator/health", ca_file=str(tls.ca_cert)),
                   timeout_s=START_TIMEOUT_S, what="FAL emulator", process=fal.popen)
        wait_until(http_ok(f"{storage_admin_url}/_emulator/health"), timeout_s=START_TIMEOUT_S,
                   what="Storage emulator", process=storage.popen)
        wait_until(http_ok(f"{toxiproxy_url}/version"), timeout_s=START_TIMEOUT_S, what="Toxiproxy server",
                   process=toxiproxy.popen if toxiproxy else None)

        proxies = FaultController(toxiproxy_url).ensure_proxies({
            "fal": f"127.0.0.1:{fal_port}",
            "postgres": f"127.0.0.1:{self._postgres.port}",
            "storage": f"127.0.0.1:{storage_port}",
        })
        postgres_host, postgres_port = proxies["postgres"].rsplit(":", 1)
        self.info = StackInfo(
            service_url="",
            toxiproxy_url=toxiproxy_url,
            proxies=proxies,
            database_url=self._postgres.dsn.replace(f"127.0.0.1:{self._postgres.port}", f"{postgres_host}:{postgres_port}"),
            fal_url=f"https://{proxies['fal']}",
            fal_key=FAL_KEY,
            storage_url=f"http://{proxies['storage']}",
            service_key=service_key,
            ca_bundle=str(tls.ca_bundle),
            jwt_secret=jwt_secret,
            jwt_issuer=JWT_ISSUER,
            profile=self._profile,
            timing=self._timing,
            fal_admin_url=fal_admin_url,
            storage_admin_url=storage_admin_url,
            database_direct_url=self._postgres.dsn,
            traces_file=str(self._root / "traces.jsonl"),
        )
        self.start_service()

    def _spawn(self, name: str, python_args: list[str], env: dict[str, str] | None = None,
               cwd: Path | None = None) -> ChildProcess:
        with interrupts.deferred():  # a started child close() does not know of would outlive the stack
            child = ChildProcess(name, [sys.executable, *python_args], log_dir=self.log_dir, env=env, cwd=cwd)
            self._children.append(child)
        return child

    def service_environment(self) -> dict[str, str]:
        """The environment the service runs with: dependencies through proxies, profile, timing."""
        info = self.info
        assert info is not None
        fal_host = info.fal_url.removeprefix("https://")
        return {
            "GENCHAOS_DATABASE_URL": info.database_url,
            "GENCHAOS_SUPABASE_URL": info.storage_url,
            "GENCHAOS_SUPABASE_SERVICE_KEY": info.service_key,
            "GENCHAOS_SUPABASE_JWT_SECRET": info.jwt_secret,
            "GENCHAOS_SUPABASE_JWT_ISSUER": info.jwt_issuer,
            "GENCHAOS_PROFILE": info.profile,
            "GENCHAOS_TIMING": info.timing,
            "GENCHAOS_TRACES_FILE": info.traces_file or "",
            "FAL_KEY": info.fal_key,
            "FAL_QUEUE_RUN_HOST": fal_host,
            "FAL_RUN_HOST": f"{fal_host}/_run",  # the emulator serves fal's run host under /_run
            "SSL_CERT_FILE": info.ca_bundle,
            "NO_PROXY": "127.0.0.1,localhost",
            **self._service_env,
        }

    def start_service(self, port: int | None = None) -> StackInfo:
        """Start the service on ``port`` (default: a new free port) and wait until it is ready; a load
        generator that keeps its target across a restart passes the port the service had."""
        assert self.info is not None
        port = port or free_port()
        env, cwd = self.service_environment(), None
        if self.service_root is not None:
            cwd = Path(self.service_root).resolve()
            if not (cwd / "service" / "__init__.py").is_file():
                raise StackError(f"{cwd} holds no service package to run")
            # `python -m` puts the working directory first on sys.path, ahead of the editable install;
            # PYTHONPATH keeps it first for any interpreter the service itself starts.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), os.environ.get("PYTHONPATH")]))
        self._service = self._spawn("service", ["-m", "service", "--host", "127.0.0.1", "--port", str(port)],
                                    env=env, cwd=cwd)
        self.info.service_url = f"http://127.0.0.1:{port}"
        self.info.service_pid = self._service.pid
        try:
            wait_until(http_ok(f"{self.info.service_url}/readyz"), timeout_s=START_TIMEOUT_S, what="service",
                       process=self._service.popen)
        except StackError as exc:
            raise StackError(f"{exc}; its last output:\n{self._service.log_tail()}") from exc
        return self.info

    def stop_service(self) -> None:
        """SIGTERM the service (it drains) and wait for it."""
        if self._service is not None:
            self._service.stop()
            self._children.remove(self._service)
            self._service = None

    def kill_service(self) -> None:
        """SIGKILL the service, as a crash would."""
        if self._service is not None:
            self._service.kill()
            self._children.remove(self._service)
            self._service = None

    @property
    def postgres(self) -> PostgresServer:
        """The real PostgreSQL server behind the `postgres` proxy (tests kill and restart it)."""
        assert self._postgres is not None
        return self._postgres

    def restart_service(self, profile: str | None = None, timing: str | None = None,
                        env: dict[str, str] | None = None) -> StackInfo:
        """A fresh service process (fresh breakers) on the same database, emulators and proxies."""
        assert self.info is not None
        if profile is not None:
            self.info.profile = _known_profile(profile)
        if timing is not None:
            self.info.timing = _known_timing(timing)
        if env is not None:
            self._service_env = dict(env)
        self.stop_service()
        return self.start_service()

    def close(self) -> None:
        """Stop every child (service first), the database, and delete the stack directory. A Ctrl-C or
        SIGTERM meanwhile (a second one, or a lane's stop while it closes a stack that failed) waits
        until all of it is done, rather than leave the rest running."""
        with interrupts.deferred():
            for child in reversed(self._children):
                child.stop()
            self._children.clear()
            self._service = None
            if self._postgres is not None:
                self._postgres.stop()
                self._postgres = None
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
                self._root = None
