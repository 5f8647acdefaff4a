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

import jwt

from chaos.contract import launch
from chaos.contract.model import Contract, ContractError, default_contract
from chaos.contract.names import PROFILES, TIMINGS, canonical_profile, canonical_timing
from chaos.stack import interrupts
from chaos.stack.faults import FaultController
from chaos.stack.postgres import PostgresServer
from chaos.stack.processes import ChildProcess, StackError, free_port, http_ok, wait_until
from chaos.stack.tls import make_test_ca

__all__ = ["PROFILES", "TIMINGS", "EmbeddedStack", "StackInfo"]
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
    contract: str | None = None  # the service's contract file (None: the reference service's)
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


def _default_profile(contract: Contract) -> str:
    """hardened when the contract offers it (what the gate judges), else its first profile."""
    return "hardened" if "hardened" in contract.profiles else next(iter(contract.profiles))


def _check_offered(contract: Contract, profile: str, timing: str) -> None:
    """StackError unless the contract offers the profile and the timing preset."""
    try:
        contract.profile_env(profile)
        contract.preset(timing)
    except ContractError as exc:
        raise StackError(str(exc)) from exc


class EmbeddedStack:
    """Start the whole stack as a context manager; ``info`` describes it while it runs. The service is
    the one ``contract`` describes (default: the reference service): started by its command, or, when
    the contract names a URL, one running elsewhere that the harness only waits for."""

    def __init__(self, base_dir: Path | None = None, profile: str | None = None, timing: str = "fast",
                 service_env: dict[str, str] | None = None, service_root: Path | None = None,
                 contract: Contract | None = None, wait_for_external: bool = True) -> None:
        try:
            self.contract = contract or default_contract()
        except ContractError as exc:
            raise StackError(str(exc)) from exc
        profile = _known_profile(profile or _default_profile(self.contract))
        timing = _known_timing(timing)
        _check_offered(self.contract, profile, timing)
        self._base_parent = base_dir
        self._profile = profile
        self._timing = timing
        self._service_env = dict(service_env or {})
        # A directory to run the contract's command in instead of its own cwd (a patched copy of the
        # service's source, say); it may be swapped between service restarts.
        self.service_root = service_root
        # A service the contract gives by URL may not be up yet when the stack starts (`genchaos up`, whose
        # user starts it with `genchaos env`); scenarios always wait for it.
        self._wait_for_external = wait_for_external
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
        fal = self._spawn("fal-emulator", [sys.executable, "-m", "chaos.emulators.fal", "--host", "127.0.0.1", "--port", str(fal_port),
                                           "--certfile", str(tls.server_cert), "--keyfile", str(tls.server_key),
                                           f"--key={FAL_KEY}"])
        storage = self._spawn("storage-emulator", [sys.executable, "-m", "chaos.emulators.storage", "--host", "127.0.0.1",
                                                   "--port", str(storage_port), "--data-dir", str(self._root / "storage"),
                                                   # `=` keeps a secret that starts with "-" from reading as a flag
                                                   f"--service-key={service_key}", f"--jwt-secret={jwt_secret}"])
        toxiproxy_url = os.environ.get("TOXIPROXY_URL")
        toxiproxy = None
        if not toxiproxy_url:
            toxiproxy_port = free_port()
            toxiproxy_url = f"http://127.0.0.1:{toxiproxy_port}"
            toxiproxy = self._spawn("toxiproxy", [sys.executable, "-m", "chaos.toxiproxy", "--host", "127.0.0.1",
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
            contract=str(self.contract.source) if self.contract.source else None,
        )
        self.start_service()

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None,
               cwd: Path | None = None) -> ChildProcess:
        with interrupts.deferred():  # a started child close() does not know of would outlive the stack
            child = ChildProcess(name, argv, log_dir=self.log_dir, env=env, cwd=cwd)
            self._children.append(child)
        return child

    def service_environment(self) -> dict[str, str]:
        """The environment the service runs with: dependencies through proxies, profile, timing, settings."""
        assert self.info is not None
        try:
            return launch.service_environment(self.contract, self.info, self._service_env)
        except ContractError as exc:
            raise StackError(str(exc)) from exc

    def start_service(self, port: int | None = None) -> StackInfo:
        """Start the service on ``port`` (default: a new free port) and wait until it is healthy; a load
        generator that keeps its target across a restart passes the port the service had. A service the
        contract gives by URL is only waited for."""
        assert self.info is not None
        start = self.contract.start
        if start.url is not None:
            self.info.service_url = start.url.rstrip("/")
            if self._wait_for_external:
                wait_until(http_ok(f"{self.info.service_url}{start.health_path}"), timeout_s=start.start_timeout_s,
                           what=f"service {self.contract.name} at {start.url}")
            return self.info
        port = port or free_port()
        env = self.service_environment()
        try:
            cwd = launch.working_directory(self.contract, self.service_root)
            argv = launch.command(self.contract, port)
        except ContractError as exc:
            raise StackError(str(exc)) from exc
        env["PYTHONPATH"] = launch.python_path(cwd)
        try:
            self._service = self._spawn("service", argv, env=env, cwd=cwd)
        except OSError as exc:
            raise StackError(f"service {self.contract.name}: cannot run {launch.describe(argv)}: {exc}") from exc
        self.info.service_url = f"http://{launch.HOST}:{port}"
        self.info.service_pid = self._service.pid
        try:
            wait_until(http_ok(f"{self.info.service_url}{start.health_path}"), timeout_s=start.start_timeout_s,
                       what=f"service {self.contract.name} ({launch.describe(argv)})", process=self._service.popen)
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
        _check_offered(self.contract, self.info.profile, self.info.timing)
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
