"""The scenario format, the catalogue and the `run`/`scenarios` commands' argument handling."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from chaos.commands import run as run_command
from chaos.commands import scenarios as scenarios_command
from chaos.scenarios.catalogue import ScenarioError, load_catalogue, load_scenario, select, suite
from chaos.stack.embedded import StackInfo

REQUIRED = {"baseline", "fal_down", "fal_latency", "fal_resets", "fal_flapping", "fal_http_500", "fal_429",
            "fal_ingress_503", "fal_stuck_jobs", "fal_slow_errors", "db_down", "db_latency", "db_resets", "storage_down",
            "storage_bandwidth", "storage_timeout", "brownout", "breaker_recovery_real_timing"}

VALID = """
name: custom
description: a custom scenario
load: {rate_per_s: 10, duration_s: 6}
faults:
  - {at: 2, for: 1, down: fal}
checks:
  - {metric: success_rate, phase: before, min: 0.7}
"""


def write(tmp_path: Path, text: str, name: str = "custom.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_catalogue_has_every_required_scenario_and_the_ci_suite_is_fast():
    catalogue = load_catalogue()
    assert REQUIRED <= catalogue.keys()
    assert [s.name for s in suite("full", catalogue)] == list(catalogue)
    ci = suite("ci", catalogue)
    assert 5 <= len(ci) < len(catalogue)
    assert all(s.timing == "fast" and s.load.duration_s <= 17 for s in ci)
    real = catalogue["breaker_recovery_real_timing"]
    assert real.timing == "real" and "recovery_30s" in real.evidence


def test_a_valid_file_loads_with_fault_timeline_and_scoped_checks(tmp_path):
    scenario = load_scenario(write(tmp_path, VALID))
    assert scenario.fault_windows() == [(2.0, 3.0)]
    assert scenario.checks[0].label == "success_rate[before]"
    assert scenario.checks[0].holds(0.95) and not scenario.checks[0].holds(0.5)
    assert not scenario.checks[0].holds(None)


@pytest.mark.parametrize("change, field", [
    (("rate_per_s: 10", "rate_per_s: -2"), "load.rate_per_s"),
    (("rate_per_s: 10", "rate_per_s: 3"), "checks.0 (success_rate[before]): the load sends about 3 requests"),
    # 10 requests before the fault can never show a 95% success rate, even if every one succeeds
    (("min: 0.7", "min: 0.95"), "checks.0 (success_rate[before]): the load sends about 10 requests in phase "
                                "'before', but its bound can hold only on 73 or more"),
    (("down: fal", "down: redis"), "faults[0].down"),
    (("metric: success_rate", "metric: happiness"), "checks[0]"),
    (("down: fal", "down: fal, toxic: {proxy: fal, type: latency}"), "faults[0]"),
    (("phase: before", "phase: before, window_s: 0"), "checks[0].window_s"),
    (("load: {rate_per_s: 10, duration_s: 6}", "load: {duration_s: 6}"), "load"),
])
def test_a_bad_file_names_the_file_and_the_field(tmp_path, change, field):
    path = write(tmp_path, VALID.replace(*change))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert str(path) in str(error.value) and field in str(error.value)


def test_run_metrics_cannot_be_scoped_to_a_phase(tmp_path):
    path = write(tmp_path, VALID.replace("metric: success_rate, phase: before, min: 0.7",
                                         "metric: recovery_s, phase: after, max: 3"))
    with pytest.raises(ScenarioError, match="whole run"):
        load_scenario(path)


def test_broken_yaml_and_unknown_names_are_clear_errors(tmp_path):
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(write(tmp_path, "name: [unclosed"))
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    catalogue = load_catalogue()
    with pytest.raises(ScenarioError, match="unknown suite 'nightly'"):
        suite("nightly", catalogue)
    with pytest.raises(ScenarioError, match="unknown scenario.*nope"):
        select(catalogue, ["baseline", "nope"])


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="genchaos")
    subparsers = parser.add_subparsers()
    run_command.register(subparsers)
    scenarios_command.register(subparsers)
    return parser.parse_args(argv)


def test_run_exits_2_naming_file_and_field_for_a_bad_scenario_file(tmp_path, capsys):
    path = write(tmp_path, VALID.replace("min: 0.7", "min: lots"))
    args = parse(["run", "--scenario-file", str(path), "--out", str(tmp_path / "out")])
    assert args.handler(args) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "checks[0].min" in err
    assert not (tmp_path / "out").exists()


def test_run_exits_2_when_the_gate_names_a_profile_not_run(tmp_path, capsys):
    args = parse(["run", "--scenario", "baseline", "--profile", "report", "--gate", "hardened"])
    assert args.handler(args) == 2
    assert "--gate hardened" in capsys.readouterr().err


def test_run_exits_2_for_a_missing_stack_file(tmp_path, capsys):
    args = parse(["run", "--scenario", "baseline", "--stack-file", str(tmp_path / "nope.json")])
    assert args.handler(args) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("lanes", ["0", "9", "two", "-1"])
def test_run_refuses_a_lane_count_out_of_range_naming_it(lanes, capsys):
    with pytest.raises(SystemExit) as exited:
        parse(["run", "--lanes", lanes])
    assert exited.value.code == 2
    assert f"--lanes takes a whole number from 1 to 8, not {lanes!r}" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [["--stack-file", "stack.json"], ["--metrics-port", "9500"]])
def test_run_refuses_lanes_with_a_running_stack_or_a_metrics_port(tmp_path, capsys, extra):
    fields = {f.name: "unused" for f in dataclasses.fields(StackInfo) if f.default is dataclasses.MISSING
              and f.default_factory is dataclasses.MISSING}
    StackInfo(**{**fields, "proxies": {}, "profile": "hardened", "timing": "fast"}).dump(tmp_path / "stack.json")
    extra = [str(tmp_path / arg) if arg.endswith(".json") else arg for arg in extra]
    args = parse(["run", "--scenario", "baseline", "--profile", "hardened", "--lanes", "2", *extra,
                  "--out", str(tmp_path / "out")])
    assert args.handler(args) == 2
    assert "--lanes runs fresh stacks" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_run_selects_the_ci_suite_by_default_and_adds_named_scenarios(tmp_path):
    ci = [s.name for s in suite("ci", load_catalogue())]
    assert [s.name for s in run_command.choose_scenarios(parse(["run"]))] == ci
    named = run_command.choose_scenarios(parse(["run", "--scenario", "db_latency",
                                                "--scenario-file", str(write(tmp_path, VALID))]))
    assert [s.name for s in named] == ["db_latency", "custom"]


def test_scenarios_lists_one_line_per_catalogue_scenario(capsys):
    args = parse(["scenarios"])
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(load_catalogue())
    assert any(line.startswith("baseline ") and "ci" in line for line in lines)


def test_a_fault_is_shown_active_exactly_while_it_is_held():
    """The dashboards' fault-window annotations read genchaos_fault_active; it must follow the fault."""
    from contextlib import contextmanager

    from prometheus_client import REGISTRY

    from chaos.run.timeline import FaultSession
    from chaos.scenarios.model import Fault

    @contextmanager
    def held(*args, **kwargs):
        yield

    class Controls:
        toxic = down = behaving = staticmethod(held)

        def behaviour(self):
            return {}

        def proxy_bytes(self, proxy):
            return 0.0

    def active(proxy: str, fault: str) -> float | None:
        return REGISTRY.get_sample_value("genchaos_fault_active", {"proxy": proxy, "fault": fault})

    fault = Fault.model_validate({"at": 1, "for": 2, "toxic": {"proxy": "postgres", "type": "latency",
                                                               "attributes": {"latency": 100}}})
    session = FaultSession(Controls(), Controls(), clock=lambda: 1.0)
    with session.holding(fault) as window:
        assert active("postgres", "latency") == 1
    assert active("postgres", "latency") == 0
    assert (window.dependency, window.kind, window.proxy_bytes) == ("database", "latency", 0.0)


def test_the_old_report_names_still_read_as_as_written_and_real(tmp_path):
    """Scenario files, the CLI, stack files and the service's environment written before the rename keep
    working: 'report' reads as the as_written profile and as the real timing preset."""
    from chaos.stack.embedded import StackInfo
    from service.settings import Settings

    old = load_scenario(write(tmp_path, VALID + "profiles: [report]\ntiming: report\n"))
    assert (old.profiles, old.timing) == (["as_written"], "real")
    args = parse(["run", "--scenario", "baseline", "--profile", "report", "--gate", "report"])
    assert (args.profile, args.gate) == ("as_written", "as_written")
    settings = Settings(database_url="postgresql://x/y", supabase_url="http://x", supabase_service_key="k",
                        supabase_jwt_secret="s" * 32, supabase_jwt_issuer="i", profile="report", timing="report")
    assert (settings.profile, settings.timing, settings.breaker_recovery_timeout_s) == ("as_written", "real", 30.0)
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps(dict.fromkeys(
        [f.name for f in dataclasses.fields(StackInfo) if f.default is dataclasses.MISSING
         and f.default_factory is dataclasses.MISSING], "x") | {"profile": "report", "timing": "report"}))
    assert (StackInfo.load(stack_file).profile, StackInfo.load(stack_file).timing) == ("as_written", "real")
    with pytest.raises(ScenarioError, match="profiles"):
        load_scenario(write(tmp_path, VALID + "profiles: [reprot]\n"))
