"""Service configuration from the environment (prefix GENCHAOS_), with timing presets.

`GENCHAOS_TIMING` picks a preset for every timing; any timing given on its own (environment or
constructor argument) wins over the preset, so a scenario can change one number and keep the rest.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Profile = Literal["as_written", "hardened"]
Timing = Literal["real", "fast"]

# Earlier names, still accepted wherever a profile or timing is read (environment, CLI, scenario files,
# old report.json): both used to be called "report", after the incident report the service reproduces.
PROFILE_ALIASES = {"report": "as_written"}
TIMING_ALIASES = {"report": "real"}


def canonical_profile(name: str) -> str:
    """The profile's current name for `name`, which may be an alias; unknown names pass through unchanged."""
    return PROFILE_ALIASES.get(name, name)


def canonical_timing(name: str) -> str:
    """The timing preset's current name for `name`, which may be an alias; unknown names pass through."""
    return TIMING_ALIASES.get(name, name)


TIMING_PRESETS: dict[str, dict[str, float]] = {
    # The incident report's own numbers: breaker 5 failures / 30 s, 3 attempts 5 s apart, 300 s per FAL attempt.
    "real": {
        "breaker_failure_threshold": 5,
        "breaker_recovery_timeout_s": 30.0,
        "breaker_window_s": 60.0,
        "retry_attempts": 3,
        "retry_base_delay_s": 5.0,
        "retry_max_delay_s": 60.0,
        "fal_attempt_timeout_s": 300.0,
        "fal_poll_interval_s": 0.5,
        "generation_deadline_s": 1200.0,
        "health_refresh_interval_s": 5.0,
        "dependency_check_timeout_s": 5.0,
        "db_connect_timeout_s": 5.0,
        "db_command_timeout_s": 10.0,
        "storage_timeout_s": 20.0,
        "download_timeout_s": 30.0,
        "lease_duration_s": 30.0,
        "worker_poll_interval_s": 1.0,
        "shutdown_grace_s": 10.0,
        "unavailable_retry_after_s": 30.0,
    },
    # Short timings for CI: the same shapes, scaled so a scenario finishes in seconds.
    "fast": {
        "breaker_failure_threshold": 5,
        "breaker_recovery_timeout_s": 2.0,
        "breaker_window_s": 10.0,
        "retry_attempts": 3,
        "retry_base_delay_s": 0.2,
        "retry_max_delay_s": 2.0,
        "fal_attempt_timeout_s": 3.0,
        "fal_poll_interval_s": 0.1,
        "generation_deadline_s": 20.0,
        "health_refresh_interval_s": 0.5,
        "dependency_check_timeout_s": 1.0,
        "db_connect_timeout_s": 1.0,
        "db_command_timeout_s": 2.0,
        "storage_timeout_s": 3.0,
        "download_timeout_s": 3.0,
        "lease_duration_s": 3.0,
        "worker_poll_interval_s": 0.1,
        "shutdown_grace_s": 3.0,
        "unavailable_retry_after_s": 1.0,
    },
}


class Settings(BaseSettings):
    """Every number the service uses; see docs/architecture.md for the environment names."""

    model_config = SettingsConfigDict(env_prefix="GENCHAOS_", extra="ignore", populate_by_name=True)

    # Connections
    database_url: str
    supabase_url: str
    supabase_service_key: str
    supabase_jwt_secret: str = Field(min_length=32)  # HS256 wants a key of at least 32 bytes (RFC 7518)
    supabase_jwt_issuer: str
    storage_bucket: str = "generations"
    fal_model_id: str = "fal-ai/flux/dev"
    fal_key: str = Field("", validation_alias=AliasChoices("fal_key", "FAL_KEY", "GENCHAOS_FAL_KEY"))

    # Behaviour
    profile: Profile = "hardened"
    timing: Timing = "real"
    legacy_tokens_enabled: bool = False
    max_token_bytes: int = 4096
    max_body_bytes: int = 64 * 1024
    # Also read under the names genchaos scenarios give these bounds (GENCHAOS_ADMISSION_BOUND, ...).
    max_queue_depth: int = Field(1000, ge=1, validation_alias=AliasChoices(
        "max_queue_depth", "GENCHAOS_MAX_QUEUE_DEPTH", "GENCHAOS_ADMISSION_BOUND"))
    max_unfinished_per_user: int = Field(20, ge=1, validation_alias=AliasChoices(  # hardened: more is a 429
        "max_unfinished_per_user", "GENCHAOS_MAX_UNFINISHED_PER_USER", "GENCHAOS_PER_USER_LIMIT"))
    signed_url_expires_s: int = 3600
    worker_concurrency: int = 4
    db_pool_min_size: int = 1
    db_pool_max_size: int = 10
    startup_timeout_s: float = 30.0
    retry_budget_ratio: float = 0.2
    retry_budget_min_per_s: float = 1.0
    retry_budget_ttl_s: float = Field(10.0, gt=0)  # how long a first attempt earns, and a retry spends, budget
    breaker_half_open_max_calls: int = 1
    breaker_failure_rate_threshold: float = 0.5
    breaker_min_calls_in_window: int = 10
    log_level: str = "INFO"
    traces_file: str | None = None  # OTLP/JSON lines file for embedded runs; empty means none

    # Timings (filled from the preset unless given)
    breaker_failure_threshold: int
    breaker_recovery_timeout_s: float
    breaker_window_s: float
    retry_attempts: int
    retry_base_delay_s: float
    retry_max_delay_s: float
    fal_attempt_timeout_s: float
    fal_poll_interval_s: float
    generation_deadline_s: float
    health_refresh_interval_s: float
    dependency_check_timeout_s: float
    db_connect_timeout_s: float
    db_command_timeout_s: float
    storage_timeout_s: float
    download_timeout_s: float
    lease_duration_s: float
    worker_poll_interval_s: float
    shutdown_grace_s: float
    unavailable_retry_after_s: float

    @model_validator(mode="before")
    @classmethod
    def _apply_timing_preset(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        values = dict(values)
        for key, canonical in (("profile", canonical_profile), ("timing", canonical_timing)):
            if isinstance(values.get(key), str):
                values[key] = canonical(values[key])
        timing = values.get("timing", "real")
        preset = TIMING_PRESETS.get(str(timing))
        if preset is None:
            return values  # the Literal check reports the bad value
        return {**preset, **values}

    def published_timings(self) -> dict[str, float]:
        """Every timing plus the breaker's and retries' numbers, as /readyz publishes them: outside checks
        judge the service against what it says it runs with, not against a copy of the presets."""
        names = [*TIMING_PRESETS["real"], "worker_concurrency", "breaker_half_open_max_calls",
                 "breaker_failure_rate_threshold", "breaker_min_calls_in_window", "retry_budget_ratio",
                 "retry_budget_min_per_s", "retry_budget_ttl_s"]
        return {name: float(getattr(self, name)) for name in names}
