"""The service contract: the two shipped contracts load, every kind of bad contract is refused with the
path of the field at fault (or the file), and launching from a contract gives the service the stack's
values under the contract's names, with the profile, the timing preset and a scenario's settings on top."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaos.contract import launch
from chaos.contract.model import (
    CAUSES,
    REPORT_SENTENCES,
    TIMING_NAMES,
    Contract,
    ContractError,
    default_contract,
    load_contract,
    parse_contract,
)

ROOT = Path(__file__).resolve().parents[2]
LUMEN = ROOT / "examples" / "lumen" / "genchaos.yaml"


def minimal(**fields: Any) -> dict[str, Any]:
    """The smallest valid contract, with ``fields`` replacing or adding top-level keys."""
    return {"name": "svc", "start": {"command": ["{python}", "-m", "svc", "--port", "{port}"]}, **fields}


def refusal(data: Any) -> str:
    with pytest.raises(ContractError) as caught:
        parse_contract(data)
    return str(caught.value)


# --- the shipped contracts ----------------------------------------------------------------------

def test_the_reference_contract_loads_with_its_header_its_telemetry_and_both_profiles():
    contract = default_contract()
    assert contract.name == "genchaos-reference"
    assert set(contract.profiles) == {"as_written", "hardened"} and set(contract.timings) == {"real", "fast"}
    assert contract.telemetry.cause_header == "X-Genchaos-503-Reason"
    assert contract.telemetry.metrics.upstream_attempts == "genchaos_upstream_attempts_total"
    assert contract.features.idempotency_keys is True and contract.features.per_user_limit == 20
    assert set(contract.preset("fast").values) <= set(TIMING_NAMES)
    assert contract.preset("report") is contract.preset("real")  # the old name still reads
    assert contract.workdir == ROOT  # its cwd is relative to service/genchaos.yaml


def test_lumen_loads_with_its_own_api_and_no_telemetry():
    contract = load_contract(LUMEN)
    assert contract.name == "lumen" and contract.source == LUMEN
    assert contract.api.submit.path == "/v2/images" and contract.api.get == "/v2/images/{id}"
    assert contract.api.fields.id == "job_id" and contract.api.statuses.completed == ["done"]
    assert contract.telemetry.cause_header is None and contract.telemetry.breakers is None
    assert contract.telemetry.metrics.upstream_attempts is None
    assert contract.features.idempotency_keys is False
    assert list(contract.profiles) == ["as_written"]
    assert contract.workdir == LUMEN.parent


def test_a_minimal_contract_takes_the_reports_defaults():
    contract = parse_contract(minimal())
    assert contract.api.submit.path == "/api/v1/generations" and contract.api.submit.accepted == [202]
    assert {cause: contract.sentence(cause) for cause in CAUSES} == {
        "fal_unavailable": REPORT_SENTENCES["fal_unavailable"],
        "database_unavailable": REPORT_SENTENCES["database_unavailable"],
        "storage_unavailable": REPORT_SENTENCES["storage_unavailable"],
        "breaker_open": REPORT_SENTENCES["high_load"],
        "overloaded": REPORT_SENTENCES["high_load"],
    }
    assert list(contract.profiles) == ["as_written"] and list(contract.timings) == ["real"]
    assert contract.telemetry.cause_header is None


# --- refusals, each naming the field at fault ---------------------------------------------------

@pytest.mark.parametrize(("data", "path", "words"), [
    (minimal(colour="blue"), "colour", "Extra inputs"),
    (minimal(api={"submit": {"bdy": {}}}), "api.submit.bdy", "Extra inputs"),
    (minimal(features={"idempotency_keys": "often"}), "features.idempotency_keys", "boolean"),
    (minimal(features={"per_user_limit": 0}), "features.per_user_limit", "greater than or equal to 1"),
    ({"name": "svc", "start": {"command": "svc --port {port}"}}, "start.command", "valid list"),
    ({"name": "svc", "start": {"command": ["svc", "--port", "8000"]}}, "start", "{port}"),
    ({"name": "svc", "start": {"command": ["svc", "{port}"], "url": "http://h:1"}}, "start", "exactly one"),
    ({"name": "svc", "start": {}}, "start", "exactly one"),
    (minimal(api={"submit": {"body": {"model_id": "{model_id}", "text": "hello"}}}), "api.submit.body", "{prompt}"),
    (minimal(api={"get": "/api/v1/generations"}), "api.get", "{id}"),
    (minimal(profiles={"sturdy": {}}), "profiles", "unknown profile sturdy"),
    (minimal(timings={"slow": {}}), "timings", "unknown timing preset slow"),
    (minimal(timings={"fast": {"values": {"breaker_treshold": 5}}}), "timings.fast.values",
     "unknown timing breaker_treshold"),
    ({"start": {"command": ["svc", "{port}"]}}, "name", "Field required"),
])
def test_a_bad_contract_is_refused_naming_the_field(data, path, words):
    message = refusal(data)
    assert f"{path}: " in message
    assert words in message


def test_every_bad_field_is_named_at_once():
    message = refusal(minimal(colour="blue", api={"get": "/x"}))
    assert "colour: " in message and "api.get: " in message


def test_a_contract_that_is_not_a_mapping_is_refused():
    assert "a contract is a mapping" in refusal(["name", "svc"])


def test_a_refusal_names_the_file_it_came_from(tmp_path: Path):
    path = tmp_path / "genchaos.yaml"
    path.write_text("name: svc\nstart: {url: http://h:1}\nshade: dark\n")
    with pytest.raises(ContractError, match=r"genchaos\.yaml: shade: "):
        load_contract(path)


def test_a_missing_file_is_named(tmp_path: Path):
    missing = tmp_path / "nowhere" / "genchaos.yaml"
    with pytest.raises(ContractError, match="does not exist") as caught:
        load_contract(missing)
    assert str(missing) in str(caught.value)


def test_a_file_that_is_not_yaml_is_named(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: svc\nstart: {command: [svc, '{port}'\n")
    with pytest.raises(ContractError, match="not readable YAML") as caught:
        load_contract(path)
    assert str(path) in str(caught.value)


def test_old_profile_and_timing_names_are_read_as_the_current_ones():
    contract = parse_contract(minimal(profiles={"report": {"MODE": "as-is"}}, timings={"report": {}}))
    assert contract.profile_env("as_written") == {"MODE": "as-is"}
    assert list(contract.timings) == ["real"]


def test_asking_for_a_profile_or_preset_the_contract_lacks_names_what_it_has():
    contract = parse_contract(minimal())
    with pytest.raises(ContractError, match="no 'hardened' profile .it has as_written"):
        contract.profile_env("hardened")
    with pytest.raises(ContractError, match="no 'fast' timing preset .it has real"):
        contract.preset("fast")


# --- launching from a contract ------------------------------------------------------------------

@dataclass
class Stack:
    database_url: str = "postgresql://u:p@127.0.0.1:6001/db"
    fal_url: str = "https://127.0.0.1:6002"
    fal_key: str = "key-id:key-secret"
    ca_bundle: str = "/tmp/ca.pem"
    storage_url: str = "https://127.0.0.1:6003"
    service_key: str = "service-key"
    jwt_secret: str = "jwt-secret"
    jwt_issuer: str = "https://issuer/auth/v1"
    traces_file: str | None = None
    profile: str = "hardened"
    timing: str = "fast"


def launched(**fields: Any) -> Contract:
    return parse_contract(minimal(**{
        "env": {"database_url": "DB_DSN", "fal_host": "FAL_HOST", "fal_run_host": "FAL_RUN", "fal_key": "FAL_SECRET",
                "ca_bundle": "CA", "storage_url": "STORE", "storage_key": None, "jwt_secret": "JWT",
                "jwt_issuer": "ISS", "traces_file": "TRACES",
                "fixed": {"NO_PROXY": "localhost", "SHARED": "fixed", "LEVEL": "fixed"}},
        "profiles": {"as_written": {}, "hardened": {"MODE": "hardened", "SHARED": "profile", "LEVEL": "profile"}},
        "timings": {"fast": {"env": {"SHARED": "preset", "TICK": "preset"}}}, **fields}))


def test_the_stack_reaches_the_service_under_the_contracts_variable_names():
    env = launch.service_environment(launched(), Stack(), {})
    assert env["DB_DSN"] == Stack.database_url
    assert env["FAL_HOST"] == "127.0.0.1:6002" and env["FAL_RUN"] == "127.0.0.1:6002/_run"
    assert env["FAL_SECRET"] == Stack.fal_key and env["CA"] == Stack.ca_bundle and env["STORE"] == Stack.storage_url
    assert env["JWT"] == Stack.jwt_secret and env["ISS"] == Stack.jwt_issuer
    assert env["NO_PROXY"] == "localhost"
    # a value the service does not take is not set under any name, nor under the reference's
    assert Stack.service_key not in env.values()
    assert not {"GENCHAOS_DATABASE_URL", "GENCHAOS_SUPABASE_SERVICE_KEY", "FAL_QUEUE_RUN_HOST"} & set(env)


def test_the_profile_then_the_preset_then_the_settings_win():
    contract = launched()
    env = launch.service_environment(contract, Stack(), {"TICK": "setting", "DB_DSN": "postgresql://elsewhere"})
    assert env["MODE"] == "hardened"
    assert env["LEVEL"] == "profile"  # the stack's values < profile
    assert env["SHARED"] == "preset"  # profile < preset
    assert env["TICK"] == "setting"  # preset < settings
    assert env["DB_DSN"] == "postgresql://elsewhere"  # a scenario's setting beats even the stack
    as_written = launch.service_environment(contract, Stack(profile="as_written"), {})
    assert "MODE" not in as_written and as_written["LEVEL"] == "fixed"


def test_the_reference_contract_gives_the_reference_service_its_own_variables():
    env = launch.service_environment(default_contract(), Stack(traces_file="/tmp/t.jsonl"), {})
    assert env["GENCHAOS_DATABASE_URL"] == Stack.database_url and env["FAL_RUN_HOST"] == "127.0.0.1:6002/_run"
    assert env["GENCHAOS_PROFILE"] == "hardened" and env["GENCHAOS_TIMING"] == "fast"
    assert env["GENCHAOS_TRACES_FILE"] == "/tmp/t.jsonl"


def test_a_profile_or_preset_the_contract_lacks_cannot_be_launched():
    with pytest.raises(ContractError, match="profile"):
        launch.service_environment(launched(), Stack(profile="sturdy"), {})
    with pytest.raises(ContractError, match="timing preset"):
        launch.service_environment(launched(), Stack(timing="real"), {})


def test_the_command_fills_port_host_and_python():
    contract = parse_contract(minimal(start={"command": ["{python}", "-m", "svc", "--bind", "{host}:{port}",
                                                        "--port={port}"]}))
    assert launch.command(contract, 8123) == [sys.executable, "-m", "svc", "--bind", "127.0.0.1:8123",
                                              "--port=8123"]


def test_a_contract_naming_a_url_has_no_command():
    contract = parse_contract({"name": "remote", "start": {"url": "http://10.0.0.5:8000"}})
    with pytest.raises(ContractError, match="names a URL"):
        launch.command(contract, 8000)


def test_the_command_runs_where_the_contract_file_says(tmp_path: Path):
    (tmp_path / "src").mkdir()
    contract = parse_contract(minimal(start={"command": ["svc", "{port}"], "cwd": "src"}), tmp_path / "genchaos.yaml")
    assert launch.working_directory(contract) == tmp_path / "src"
    assert launch.working_directory(contract, tmp_path) == tmp_path
    gone = parse_contract(minimal(start={"command": ["svc", "{port}"], "cwd": "gone"}), tmp_path / "genchaos.yaml")
    with pytest.raises(ContractError, match="not a directory"):
        launch.working_directory(gone)


# --- a scenario's settings, by the contract's names ---------------------------------------------

def test_a_scenario_setting_reaches_lumen_under_its_own_name_and_sets_the_timing_judged():
    lumen = load_contract(LUMEN)
    env, timings = lumen.scenario_settings({"GENCHAOS_BREAKER_FAILURE_THRESHOLD": "3",
                                            "GENCHAOS_MAX_UNFINISHED_PER_USER": "100000"})
    assert env == {"LUMEN_BREAKER_THRESHOLD": "3"}  # a setting lumen has no variable for is not given
    assert timings == {"breaker_failure_threshold": 3.0}
    launched_env = launch.service_environment(lumen, Stack(profile="as_written"),
                                              {"GENCHAOS_BREAKER_FAILURE_THRESHOLD": "3"})
    assert launched_env["LUMEN_BREAKER_THRESHOLD"] == "3" and "GENCHAOS_BREAKER_FAILURE_THRESHOLD" not in launched_env


def test_without_settings_names_a_scenarios_settings_pass_as_they_are():
    env, timings = default_contract().scenario_settings({"GENCHAOS_RETRY_BASE_DELAY_S": "0.5",
                                                         "GENCHAOS_MAX_UNFINISHED_PER_USER": "100000"})
    assert env == {"GENCHAOS_RETRY_BASE_DELAY_S": "0.5", "GENCHAOS_MAX_UNFINISHED_PER_USER": "100000"}
    assert timings == {"retry_base_delay_s": 0.5}


def test_a_settings_name_that_is_no_timing_is_refused():
    message = refusal(minimal(settings={"breaker_treshold": "SVC_THRESHOLD"}))
    assert "settings: " in message and "unknown setting breaker_treshold" in message
