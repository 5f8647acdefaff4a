"""Bad input to `genchaos load` and to the locustfile is a clear error with exit code 2, and a
scenario fills in the Locust options a user did not give. No stack is started here."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from chaos.cli import main
from chaos.run.traffic import POLL_INTERVAL_S
from chaos.stack.embedded import StackInfo
from loadtests.options import DEFAULT_POLL_INTERVAL_S, LoadSetupError, flooding_users, resolve
from tests.load.helpers import LOCUSTFILE, write_scenario

pytestmark = pytest.mark.load


def genchaos_load(capsys, *args: str) -> tuple[int, str]:
    """`genchaos load` in this process (it never imports Locust itself): exit code and stderr."""
    try:
        code = main(["load", *args])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    return code, " ".join(capsys.readouterr().err.split())


def test_unknown_scenario_is_a_usage_error_naming_it(capsys):
    code, err = genchaos_load(capsys, "--scenario", "no_such_scenario")
    assert code == 2
    assert "no_such_scenario" in err and "genchaos scenarios" in err


def test_malformed_run_time_is_rejected_by_the_parser(capsys):
    code, err = genchaos_load(capsys, "--scenario", "baseline", "--run-time", "soon")
    assert code == 2
    assert "'soon' is not a run time" in err


def test_missing_stack_file_is_a_setup_error(capsys, tmp_path: Path):
    code, err = genchaos_load(capsys, "--scenario", "baseline", "--stack-file", str(tmp_path / "absent.json"),
                              "--out", str(tmp_path / "out"))
    assert code == 2
    assert "absent.json does not exist" in err


def test_a_run_without_scenario_needs_a_run_time(capsys):
    code, err = genchaos_load(capsys, "--users", "2")
    assert code == 2
    assert "--run-time" in err


def test_locustfile_without_a_target_exits_2_with_a_message():
    result = subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-t", "1"],
                            capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "give --stack-file" in result.stderr


def fake_stack(tmp_path: Path) -> Path:
    path = tmp_path / "stack.json"
    StackInfo(service_url="http://127.0.0.1:1", toxiproxy_url="http://127.0.0.1:2", proxies={}, database_url="",
              fal_url="https://127.0.0.1:3", fal_key="", storage_url="", service_key="", ca_bundle="",
              jwt_secret="s3cret", jwt_issuer="http://issuer", profile="hardened", timing="fast",
              fal_admin_url="https://127.0.0.1:4", storage_admin_url="http://127.0.0.1:5",
              database_direct_url="").dump(path)
    return path


def environment(**options) -> SimpleNamespace:
    """What Locust hands the init event: parsed options (defaults as Locust and options.py set them)."""
    defaults = dict(stack_file="", scenario="", scenario_file="", summary_file="", generate_weight=10,
                    list_weight=1, think_min=None, think_max=None, user_pace=0.0, flood_rate=0.0, flood_user="",
                    honour_retry_after=False, poll_interval=None, generation_timeout=None, jwt_secret="",
                    jwt_issuer="", host=None, num_users=None, spawn_rate=None, run_time=None, stop_timeout=0)
    return SimpleNamespace(parsed_options=SimpleNamespace(**{**defaults, **options}), host=None, stop_timeout=0)


def test_scenario_fills_users_run_time_think_time_and_target(tmp_path: Path):
    scenario = write_scenario(tmp_path, "closed", load={"clients": 7, "duration_s": 9, "think_s": 0.3, "drain_s": 4},
                              checks=[{"metric": "success_rate", "min": 0.9}])
    env = environment(stack_file=str(fake_stack(tmp_path)), scenario_file=str(scenario))
    plan = resolve(env)
    options = env.parsed_options
    assert plan.scenario.name == "closed"
    assert (options.num_users, options.spawn_rate, options.run_time) == (7, 7.0, 9)
    assert (options.think_min, options.think_max, options.generation_timeout) == (0.3, 0.3, 4)
    assert env.host == "http://127.0.0.1:1" and options.jwt_secret == "s3cret"
    assert env.stop_timeout > options.generation_timeout  # users may finish the generation they follow


def test_explicit_options_win_and_an_arrival_rate_becomes_a_pace(tmp_path: Path):
    scenario = write_scenario(tmp_path, "open", load={"rate_per_s": 6, "duration_s": 10},
                              checks=[{"metric": "success_rate", "min": 0.9}])
    env = environment(stack_file=str(fake_stack(tmp_path)), scenario_file=str(scenario), num_users=3, run_time=4)
    resolve(env)
    options = env.parsed_options
    assert (options.num_users, options.run_time) == (3, 4)
    # 3 users at 2 generations/s each make the 6/s; a list task comes on top of every 10 generations
    assert options.user_pace == pytest.approx(2.0 * 11 / 10)


def test_a_flooding_scenario_adds_one_flooding_user_and_leaves_the_others_as_they_were(tmp_path: Path):
    """fair_share: 3/s from paced users, and one more user flooding at 15/s under one identity."""
    env = environment(stack_file=str(fake_stack(tmp_path)), scenario="fair_share")
    resolve(env)
    options = env.parsed_options
    # the generation users and their pace are what the same load without its flood gets
    assert options.num_users == 6 and options.user_pace == pytest.approx(3 * 1.1 / 6)
    assert options.flood_rate == 15 and flooding_users(options) == 1
    assert options.spawn_rate == 7.0  # every user at once, the flooding one too
    assert uuid.UUID(options.flood_user)  # its identity, picked once by the master and forwarded to workers

    calm = environment(stack_file=str(fake_stack(tmp_path)), scenario="baseline")
    resolve(calm)
    assert calm.parsed_options.flood_rate == 0 and flooding_users(calm.parsed_options) == 0


def test_given_flood_options_win_over_the_scenario(tmp_path: Path):
    env = environment(stack_file=str(fake_stack(tmp_path)), scenario="fair_share", flood_rate=2.0, flood_user="u1")
    resolve(env)
    assert (env.parsed_options.flood_rate, env.parsed_options.flood_user) == (2.0, "u1")


@pytest.mark.parametrize("options, message", [
    ({"generate_weight": 0, "list_weight": 0}, "not both 0"),
    ({"think_min": 2.0, "think_max": 1.0}, "--think-min"),
    ({"flood_rate": -1.0}, "--flood-rate"),
    ({"scenario": "baseline", "scenario_file": "x.yaml"}, "not both"),
    ({"scenario": "fal_down", "stack_file": "", "jwt_secret": "s", "jwt_issuer": "i", "host": "http://h"},
     "fault timeline"),
])
def test_bad_settings_are_named(tmp_path: Path, options: dict, message: str):
    base = {"stack_file": str(fake_stack(tmp_path))}
    env = environment(**{**base, **options})
    env.host = env.parsed_options.host
    with pytest.raises(LoadSetupError, match=message):
        resolve(env)


def test_a_scenario_polls_as_genchaos_run_does_and_a_plain_load_like_a_person(tmp_path: Path):
    scenario = environment(stack_file=str(fake_stack(tmp_path)), scenario="baseline")
    plain = environment(stack_file=str(fake_stack(tmp_path)), run_time="5")
    given = environment(stack_file=str(fake_stack(tmp_path)), scenario="baseline", poll_interval=0.05)
    for env in (scenario, plain, given):
        resolve(env)
    assert scenario.parsed_options.poll_interval == POLL_INTERVAL_S
    assert plain.parsed_options.poll_interval == DEFAULT_POLL_INTERVAL_S
    assert given.parsed_options.poll_interval == 0.05
