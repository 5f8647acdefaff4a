"""The service contract: a YAML file that tells the harness everything it may rely on about a service.

How to start it (a command with ``{port}`` placeholders, or the URL of one already running), which
environment variables receive the stack's addresses and keys, its API (paths, fields, status values),
the 503 sentence for each cause, the timings its claims are judged against, the features it claims and
the telemetry it offers. Every key has the report's service as its default, so a contract names only
where a service differs. Unknown keys and wrong types are refused with the field's path.

The verdicts never depend on telemetry: what a service says about itself (a cause header, published
timings, breaker states) is a second witness where the contract names it, and a check that can only be
decided from telemetry the contract does not give is reported as unmeasured.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chaos.contract.names import PROFILES, TIMINGS, canonical_profile, canonical_timing

CONTRACT_FILE_NAME = "genchaos.yaml"
SETTING_PREFIX = "GENCHAOS_"  # how scenarios name the settings they change
PLACEHOLDERS = ("{port}", "{host}", "{python}")

# The report's four sentences (the high-load one serves the open breaker and an overloaded queue).
HIGH_LOAD = "AI generation service is experiencing high load. Please try again in a few minutes."
REPORT_SENTENCES = {
    "fal_unavailable": "AI generation service temporarily unavailable. Please try again later.",
    "database_unavailable": "Database service temporarily unavailable. Please try again later.",
    "storage_unavailable": "File storage service temporarily unavailable. Please try again later.",
    "high_load": HIGH_LOAD,
}

# What a 503 can blame: a dependency, an open breaker, a full queue.
CAUSES = ("fal_unavailable", "database_unavailable", "storage_unavailable", "breaker_open", "overloaded")

# The numbers the judge knows how to use, with the report's own values where it gives one.
TIMING_NAMES: dict[str, str] = {
    "breaker_failure_threshold": "consecutive failures that open the breaker",
    "breaker_recovery_timeout_s": "how long an open breaker waits before a probe",
    "breaker_window_s": "the failure-rate rule's sliding window",
    "breaker_failure_rate_threshold": "the failure rate (0..1) that opens the breaker",
    "breaker_min_calls_in_window": "calls the window needs before the rate rule applies",
    "breaker_half_open_max_calls": "probes a half-open breaker lets through",
    "retry_attempts": "attempts per generation, the first included",
    "retry_base_delay_s": "the delay before the first retry",
    "retry_max_delay_s": "the longest delay between attempts",
    "retry_budget_ratio": "retries allowed per first attempt",
    "retry_budget_min_per_s": "the retry budget's reserve per second",
    "retry_budget_ttl_s": "how long first attempts count towards the budget",
    "fal_attempt_timeout_s": "how long one FAL attempt may take",
    "health_refresh_interval_s": "how often cached dependency health is refreshed",
    "unavailable_retry_after_s": "the Retry-After of a dependency's 503",
    "worker_concurrency": "generations processed at once",
    "admission_bound": "unfinished generations beyond which POSTs are shed with 503 (features.admission_bound)",
    "per_user_limit": "unfinished generations one user may have before a 429 (features.per_user_limit)",
}
REPORT_TIMINGS: dict[str, float] = {
    "breaker_failure_threshold": 5, "breaker_recovery_timeout_s": 30.0, "retry_attempts": 3,
    "retry_base_delay_s": 5.0, "fal_attempt_timeout_s": 300.0,
}


class ContractError(ValueError):
    """A contract that cannot be used: unreadable, or a field that is unknown, missing or of the wrong type."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Start(_Strict):
    """How the harness gets a running service: a command it starts (and stops), or a URL."""

    command: list[str] | None = Field(None, min_length=1, description="argv; {port}, {host} and {python} "
                                                                        "(the harness's interpreter) are filled in")
    cwd: str = Field(".", description="working directory of the command, relative to the contract file")
    url: str | None = Field(None, description="a service already running elsewhere (the harness starts nothing)")
    health_path: str = Field("/healthz", description="polled after start until it answers 200")
    start_timeout_s: float = Field(60.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_way(self) -> Start:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of command (the harness starts it) or url (it runs elsewhere)")
        if self.command is not None and "{port}" not in " ".join(self.command):
            raise ValueError("command must contain the {port} placeholder: the harness picks a free port")
        return self


class EnvNames(_Strict):
    """Which environment variable receives each of the stack's values (null: the service does not take it)."""

    database_url: str | None = "GENCHAOS_DATABASE_URL"
    fal_host: str | None = Field("FAL_QUEUE_RUN_HOST", description="host:port of the fal proxy")
    fal_run_host: str | None = Field("FAL_RUN_HOST", description="host:port/_run of the fal proxy")
    fal_key: str | None = "FAL_KEY"
    ca_bundle: str | None = Field("SSL_CERT_FILE", description="PEM file trusting the emulators' certificates")
    storage_url: str | None = Field("GENCHAOS_SUPABASE_URL", description="the Supabase project URL (storage proxy)")
    storage_key: str | None = "GENCHAOS_SUPABASE_SERVICE_KEY"
    jwt_secret: str | None = "GENCHAOS_SUPABASE_JWT_SECRET"
    jwt_issuer: str | None = "GENCHAOS_SUPABASE_JWT_ISSUER"
    traces_file: str | None = Field(None, description="where the service may write OTLP/JSON lines")
    fixed: dict[str, str] = Field(default_factory=dict, description="constant variables, set as given")


class TimingPreset(_Strict):
    """One timing preset: the environment that selects it and the numbers it means."""

    env: dict[str, str] = Field(default_factory=dict)
    values: dict[str, float] = Field(default_factory=dict)

    @field_validator("values")
    @classmethod
    def _known_names(cls, values: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(values) - set(TIMING_NAMES))
        if unknown:
            raise ValueError(f"unknown timing {', '.join(unknown)}; known: {', '.join(TIMING_NAMES)}")
        return values


class Submit(_Strict):
    method: str = "POST"
    path: str = "/api/v1/generations"
    body: dict[str, Any] = Field(default_factory=lambda: {"model_id": "{model_id}", "prompt": "{prompt}"},
                                 description="JSON body; the strings {model_id} and {prompt} are filled in")
    accepted: list[int] = Field(default_factory=lambda: [202], min_length=1)

    @field_validator("body")
    @classmethod
    def _carries_prompt(cls, body: dict[str, Any]) -> dict[str, Any]:
        if "{prompt}" not in json.dumps(body):
            raise ValueError("the body must carry the {prompt} placeholder: the harness marks every prompt "
                             "to find each generation's FAL jobs")
        return body


class ListEndpoint(_Strict):
    path: str = "/api/v1/generations"
    items: str | None = Field("items", description="the field holding the list (null: the body is the list)")


class Fields(_Strict):
    id: str = "id"
    status: str = "status"
    image_url: str = "image_url"
    error: str = "error"


class Statuses(_Strict):
    completed: list[str] = Field(default_factory=lambda: ["completed"], min_length=1)
    failed: list[str] = Field(default_factory=lambda: ["failed"], min_length=1)


class Api(_Strict):
    submit: Submit = Field(default_factory=Submit)
    get: str = Field("/api/v1/generations/{id}", description="one generation; {id} is filled in")
    list: ListEndpoint | None = Field(default_factory=ListEndpoint)
    fields: Fields = Field(default_factory=Fields)
    statuses: Statuses = Field(default_factory=Statuses)

    @field_validator("get")
    @classmethod
    def _has_id(cls, path: str) -> str:
        if "{id}" not in path:
            raise ValueError("the get path must contain the {id} placeholder")
        return path


class Sentences(_Strict):
    """The 503 sentence for each cause: the report's by default."""

    fal_unavailable: str = REPORT_SENTENCES["fal_unavailable"]
    database_unavailable: str = REPORT_SENTENCES["database_unavailable"]
    storage_unavailable: str = REPORT_SENTENCES["storage_unavailable"]
    high_load: str = Field(HIGH_LOAD, description="an open breaker or a full queue")


class Features(_Strict):
    """What the service claims; a check of a feature it does not claim is not made."""

    idempotency_keys: bool = Field(True, description="the same Idempotency-Key from the same user returns "
                                                     "the same generation")
    per_user_limit: int | None = Field(None, ge=1, description="unfinished generations one user may have "
                                                               "before a 429")
    admission_bound: int | None = Field(None, ge=1, description="queued generations beyond which POSTs are "
                                                                "shed with 503")
    readiness_path: str | None = Field("/readyz", description="answers 503 while a dependency is down")
    legacy_tokens: bool = Field(False, description="the report's unsigned supabase_token_<uuid> is accepted "
                                                   "(anyone can forge it: the forged-token probe then fails)")


class JsonKey(_Strict):
    path: str
    key: str


class Metrics(_Strict):
    """Prometheus metric names the service exposes (null: it has none). Each is checked against what the
    harness saw happen; a check of one the contract does not name is unmeasured."""

    http_503_total: str | None = Field(None, description="a counter of the 503s the API answered, by cause")
    cause_label: str | None = Field(None, description="the 503 counter's label naming the cause")
    cause_values: dict[str, str] = Field(default_factory=dict, description="label value -> cause "
                                         "(fal_unavailable, ..., breaker_open, overloaded) where they differ")
    breaker_state: str | None = Field(None, description="a gauge of each breaker's state")
    breaker_label: str = Field("dependency", description="the gauge's label naming the breaker")
    breaker_values: dict[str, float] = Field(default_factory=lambda: {"closed": 0, "open": 1, "half_open": 2},
                                             description="state -> the gauge's value for it")
    generations_total: str | None = Field(None, description="a counter of generations reaching a terminal "
                                                            "status, labelled with the API's status value")
    status_label: str = Field("status", description="the generations counter's label naming the status")
    generation_seconds: str | None = Field(None, description="a histogram of seconds from acceptance to a terminal "
                                                             "status, labelled like generations_total")
    upstream_attempts: str | None = Field(None, description="a counter of calls to dependencies, labelled "
                                                            "dependency, operation and outcome (timeout, error, ...)")

    @model_validator(mode="after")
    def _known_values(self) -> Metrics:
        wrong = sorted(set(self.cause_values.values()) - set(CAUSES))
        if wrong:
            raise ValueError(f"cause_values: unknown cause {', '.join(wrong)}; known: {', '.join(CAUSES)}")
        if set(self.breaker_values) != {"closed", "open", "half_open"}:
            raise ValueError("breaker_values: give the gauge's value for closed, open and half_open")
        return self


class SloRules(_Strict):
    """The service's Prometheus recording rules and alerts for its availability SLO, judged on a real
    Prometheus that scrapes the service while a scenario runs."""

    files: list[str] = Field(min_length=1, description="rule files, relative to the contract file")
    job: str = Field("service", description="the scrape job name the rules select (up{job=...})")
    success_ratio: str = Field(description="a recorded series (or PromQL) of the share of API responses "
                                           "that are not 5xx, over a window at least as long as a scenario")
    ratio_503: str | None = Field(None, description="the same for the share of 503s")
    fast_burn_alert: str | None = Field(None, description="the alert that pages when the error budget burns fast")


class Telemetry(_Strict):
    """What the service says about itself; never trusted in place of what the harness saw."""

    cause_header: str | None = Field(None, description="a response header naming a 503's cause")
    timings: JsonKey | None = Field(None, description="where the service publishes the timings it runs with "
                                                      "(they override the preset's values)")
    breakers: JsonKey | None = Field(None, description="where the service publishes its breakers' states "
                                                       "(name -> {state: closed|open|half_open})")
    fal_breaker: str = Field("fal", description="the name FAL's breaker goes by in the published states and "
                                                "the breaker-state gauge")
    metrics_path: str | None = None
    metrics: Metrics = Field(default_factory=Metrics)
    slo_rules: SloRules | None = None
    cause_span_attribute: str | None = Field(None, description="the span attribute naming a 503's cause in the "
                                                              "refused request's trace (values as cause_values)")
    trace_context: bool = Field(False, description="W3C trace context is carried from each request through "
                                                   "its generation's queue to FAL, and spans are written to "
                                                   "the stack's traces file (env.traces_file)")


def _report_timings() -> dict[str, TimingPreset]:
    return {"real": TimingPreset(values=dict(REPORT_TIMINGS))}


class Contract(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    start: Start
    env: EnvNames = Field(default_factory=EnvNames)
    profiles: dict[str, dict[str, str]] = Field(default_factory=lambda: {"as_written": {}}, min_length=1,
                                                description="profile -> the environment that selects it")
    timings: dict[str, TimingPreset] = Field(default_factory=_report_timings, min_length=1)
    model_id: str = "fal-ai/flux/dev"
    settings: dict[str, str] | None = Field(
        None, description="the variable that receives each setting a scenario changes (named like a timing: "
                          "breaker_failure_threshold, retry_base_delay_s, ...); null: a scenario's GENCHAOS_* "
                          "settings are passed as they are")
    api: Api = Field(default_factory=Api)
    sentences: Sentences = Field(default_factory=Sentences)
    features: Features = Field(default_factory=Features)
    telemetry: Telemetry = Field(default_factory=Telemetry)

    # Where the contract was read from (its command's cwd is relative to it); not part of the file.
    source: Path | None = Field(None, exclude=True)

    @field_validator("profiles")
    @classmethod
    def _known_profiles(cls, profiles: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        renamed = {canonical_profile(name): env for name, env in profiles.items()}
        unknown = sorted(set(renamed) - set(PROFILES))
        if unknown:
            raise ValueError(f"unknown profile {', '.join(unknown)}: a profile says which of the report's designs "
                             f"the configuration follows ({', '.join(PROFILES)})")
        return renamed

    @field_validator("timings")
    @classmethod
    def _known_presets(cls, timings: dict[str, TimingPreset]) -> dict[str, TimingPreset]:
        renamed = {canonical_timing(name): preset for name, preset in timings.items()}
        unknown = sorted(set(renamed) - set(TIMINGS))
        if unknown:
            raise ValueError(f"unknown timing preset {', '.join(unknown)}; known: {', '.join(TIMINGS)}")
        return renamed

    @field_validator("settings")
    @classmethod
    def _known_settings(cls, settings: dict[str, str] | None) -> dict[str, str] | None:
        unknown = sorted(set(settings or {}) - set(TIMING_NAMES))
        if unknown:
            raise ValueError(f"unknown setting {', '.join(unknown)}; known: {', '.join(TIMING_NAMES)}")
        return settings

    def scenario_settings(self, settings: dict[str, str]) -> tuple[dict[str, str], dict[str, float]]:
        """A scenario's settings (GENCHAOS_<TIMING> names) as (this service's environment, the timings they
        set); a setting the contract does not map is not given to the service."""
        env: dict[str, str] = {}
        timings: dict[str, float] = {}
        for key, value in settings.items():
            name = key.removeprefix(SETTING_PREFIX).lower()
            if self.settings is None:
                env[key] = value
            elif name in self.settings:
                env[self.settings[name]] = value
            else:
                continue
            if name in TIMING_NAMES:
                timings[name] = float(value)
        return env, timings

    def rule_files(self) -> list[Path]:
        """The SLO rule files, resolved against the contract's own folder."""
        base = self.source.parent if self.source is not None else Path.cwd()
        rules = self.telemetry.slo_rules
        return [(base / name).resolve() for name in (rules.files if rules else [])]

    @property
    def workdir(self) -> Path:
        """The command's working directory."""
        base = self.source.parent if self.source is not None else Path.cwd()
        return (base / self.start.cwd).resolve()

    def preset(self, timing: str) -> TimingPreset:
        """The timing preset, or ContractError naming the presets the contract has."""
        found = self.timings.get(canonical_timing(timing))
        if found is None:
            raise ContractError(f"contract {self.name!r} has no {timing!r} timing preset "
                                f"(it has {', '.join(self.timings)})")
        return found

    def profile_env(self, profile: str) -> dict[str, str]:
        found = self.profiles.get(canonical_profile(profile))
        if found is None:
            raise ContractError(f"contract {self.name!r} has no {profile!r} profile (it has {', '.join(self.profiles)})")
        return found

    def sentence(self, cause: str) -> str | None:
        """The sentence for a 503 cause (a dependency's ``<dep>_unavailable``, ``breaker_open``, ``overloaded``)."""
        key = "high_load" if cause in ("breaker_open", "overloaded") else cause
        return getattr(self.sentences, key, None)


def _location(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(top level)"


def parse_contract(data: Any, source: Path | None = None) -> Contract:
    """Validate contract data; ContractError naming every bad field."""
    label = str(source) if source else "contract"
    if not isinstance(data, dict):
        raise ContractError(f"{label}: a contract is a mapping of keys, not {type(data).__name__}")
    try:
        contract = Contract.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_location(e)}: {e['msg']}" for e in exc.errors())
        raise ContractError(f"{label}: {problems}") from None
    contract.source = source
    return contract


def load_contract(path: Path | str) -> Contract:
    """Read and validate a contract file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ContractError(f"contract file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ContractError(f"contract file {path} is not readable YAML: {exc}") from None
    return parse_contract(data, path.resolve())


def reference_contract_path() -> Path:
    """The contract the reference service ships beside its package (found without importing it)."""
    spec = importlib.util.find_spec("service")
    if spec is None or not spec.submodule_search_locations:
        raise ContractError("the reference service is not installed; name a contract with --service")
    return Path(next(iter(spec.submodule_search_locations))) / CONTRACT_FILE_NAME


def default_contract() -> Contract:
    """The reference service's contract: what the harness judges when no other is named."""
    return load_contract(reference_contract_path())


def json_schema() -> dict[str, Any]:
    """The contract format as JSON Schema (docs/contract.schema.json is this, written out)."""
    schema = Contract.model_json_schema()
    schema["properties"].pop("source", None)
    schema["title"] = "genchaos service contract"
    return schema
