"""The load shape: the scenario's load stage, then a drain stage in which users finish the
generation they are following and the workers' last reports reach the master.

The shape reads Locust's common options (users, spawn rate, run time), which the scenario filled in
when they were not given (loadtests/options.py), so the web UI can also change them. It also picks
the user classes: the flooding user (fixed count, spawned first) only when the load floods, on top
of the users, so the generation users are as many as without a flood.
"""

from __future__ import annotations

from dataclasses import dataclass

from locust import LoadTestShape, User
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner

from loadtests.options import flooding_users
from loadtests.users import FloodingUser, GenerationUser

# After the last user stopped, wait for one more periodic worker report before ending the test.
REPORT_GRACE_S = WORKER_REPORT_INTERVAL + 1.0


@dataclass(frozen=True)
class Stage:
    name: str
    until_s: float | None  # None: until stopped
    users: int
    spawn_rate: float


def stages(options) -> list[Stage]:
    """The load stage from the common options (and the flooding user), then the drain stage (when the
    load has an end)."""
    users = (options.num_users or 1) + flooding_users(options)
    load = Stage("load", options.run_time or None, users, options.spawn_rate or 1.0)
    if load.until_s is None:
        return [load]
    drain_s = float(options.stop_timeout or 0) + REPORT_GRACE_S
    return [load, Stage("drain", load.until_s + drain_s, 0, float(max(load.users, 1)))]


def user_classes(options) -> list[type[User]]:
    """The classes Locust may spawn: left out, the flooding user's fixed count cannot take a user's place."""
    return [GenerationUser, FloodingUser] if flooding_users(options) else [GenerationUser]


class ScenarioShape(LoadTestShape):
    """Follows ``stages``; ends early once the drain has nothing left to wait for."""

    use_common_options = True
    _idle_since: float | None = None

    def reset_time(self) -> None:
        super().reset_time()
        self._idle_since = None

    def tick(self) -> tuple[int, float, list[type[User]]] | None:
        now = self.get_run_time()
        options = self.runner.environment.parsed_options
        stage = next((s for s in stages(options) if s.until_s is None or now < s.until_s), None)
        if stage is None:
            return None
        if stage.name == "drain" and self._drained(now):
            return None
        return stage.users, stage.spawn_rate, user_classes(options)

    def _drained(self, now: float) -> bool:
        """True once no user has run for long enough that every worker has reported its last records."""
        if self.get_current_user_count() > 0:
            self._idle_since = None
            return False
        if self._idle_since is None:
            self._idle_since = now
        grace = REPORT_GRACE_S if isinstance(self.runner, MasterRunner) else 0.0
        return now - self._idle_since >= grace
