"""`genchaos diff`: two runs' report.json compared; regressions of gated profiles fail it, nothing else does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.commands.diff import markdown
from chaos.judge.registry import METRICS
from chaos.report.diff import (
    READABLE_SCHEMA_VERSIONS,
    WATCHED,
    Report,
    ReportError,
    Tolerance,
    compare,
    load_report,
    parse_tolerance,
    tolerances,
)
from chaos.report.json_report import SCHEMA_VERSION

GENCHAOS = Path(sys.executable).parent / "genchaos"


def scenario(name="fal_down", profile="hardened", outcome="passed", checks=None, gated=True, **metrics) -> dict:
    return {"name": name, "profile": profile, "outcome": outcome, "verdict": "pass" if outcome == "passed" else "fail",
            "gated": gated, "checks": [{"name": n, "status": s} for n, s in (checks or {"breaker_opened": "held"}).items()],
            "metrics": {"requests": 200, "success_rate": 0.95, "rate_503": 0.02, "recovery_s": 2.0} | metrics}


def report(*scenarios, claims=(), gate=("hardened",), schema=SCHEMA_VERSION) -> dict:
    return {"schema_version": schema, "verdict": "pass", "gate": list(gate), "scenarios": list(scenarios) or [scenario()],
            "claims": [{"claim": c, "profile": p, "status": s, "held": None, "evidence": ""} for c, p, s in claims]}


def diff(base: dict, new: dict, *overrides: str):
    return compare(Report.model_validate(base), Report.model_validate(new), [parse_tolerance(o) for o in overrides])


def subjects(changes) -> list[tuple[str, str]]:
    return [(c.kind, c.subject) for c in changes]


def test_identical_runs_have_no_changes():
    assert diff(report(), report()).changes == []


def test_a_check_that_stopped_holding_and_the_outcome_it_spoiled_are_regressions():
    failed = scenario(outcome="failed", checks={"breaker_opened": "not held"})
    comparison = diff(report(), report(failed))
    assert subjects(comparison.regressions) == [("regression", "outcome"), ("regression", "check breaker_opened")]
    assert (comparison.regressions[1].before, comparison.regressions[1].after) == ("held", "not held")
    back = diff(report(failed), report())
    assert back.regressions == [] and len(back.of_kind("improvement")) == 2


def test_inconclusive_checks_and_invalid_outcomes_are_regressions_too():
    worse = scenario(outcome="invalid", checks={"breaker_opened": "inconclusive"})
    assert subjects(diff(report(), report(worse)).regressions) == [
        ("regression", "outcome"), ("regression", "check breaker_opened")]
    assert subjects(diff(report(scenario(outcome="failed")), report(scenario(outcome="invalid"))).regressions) == [
        ("regression", "outcome")]


def test_checks_are_matched_by_name_and_a_repeated_name_by_its_place():
    twice = {"success_rate": "held", "p95": "held"}
    base = scenario(checks=twice) | {"checks": [{"name": "p95", "status": "held"}, {"name": "p95", "status": "held"}]}
    new = scenario(checks=twice) | {"checks": [{"name": "p95", "status": "held"}, {"name": "p95", "status": "not held"}]}
    assert subjects(diff(report(base), report(new)).regressions) == [("regression", "check p95 #2")]


def test_claims_that_stopped_holding_are_regressions_and_unmeasured_ones_only_changes():
    claim = "100% circuit breaker recovery within 30 seconds"
    base = report(claims=[(claim, "hardened", "held")])
    for status in ("not held", "inconclusive"):
        (change,) = diff(base, report(claims=[(claim, "hardened", status)])).regressions
        assert change.subject == f"claim {claim}" and change.scenario is None
    comparison = diff(base, report(claims=[(claim, "hardened", "not measured")]))
    assert comparison.regressions == [] and subjects(comparison.changes) == [("changed", f"claim {claim}")]


def test_a_success_rate_drop_beyond_the_tolerance_is_a_regression():
    comparison = diff(report(), report(scenario(success_rate=0.80)))
    (change,) = comparison.regressions
    assert change.subject == "metric success_rate"
    assert (change.before, change.after) == ("95.0% (n=200)", "80.0% (n=200)")
    assert "15.0 pp" in change.note
    assert diff(report(), report(scenario(success_rate=0.92))).changes == []  # within 5 points


def test_a_rate_drop_that_chance_explains_is_not_a_regression():
    """The same drop on 20 requests is noise: the difference's 95% interval includes 0."""
    small = {"requests": 20}
    assert diff(report(scenario(**small)), report(scenario(success_rate=0.80, **small))).changes == []
    assert diff(report(scenario(**small)), report(scenario(success_rate=0.40, **small))).regressions


def test_a_503_rate_rise_and_a_slower_recovery_are_regressions():
    comparison = diff(report(), report(scenario(rate_503=0.20, recovery_s=3.5)))
    assert subjects(comparison.regressions) == [("regression", "metric rate_503"), ("regression", "metric recovery_s")]


def test_seconds_must_move_past_both_the_absolute_and_the_relative_tolerance():
    assert diff(report(scenario(recovery_s=10.0)), report(scenario(recovery_s=14.0))).changes == []  # +40%
    assert diff(report(scenario(recovery_s=0.2)), report(scenario(recovery_s=0.9))).changes == []  # +0.7 s
    faster = diff(report(scenario(recovery_s=10.0)), report(scenario(recovery_s=4.0)))
    assert subjects(faster.of_kind("improvement")) == [("improvement", "metric recovery_s")]


def test_latency_attempts_and_lost_generations_are_watched():
    worse = scenario(latency_p95_s=4.0, upstream_attempts_per_generation=2.0, lost_generations=1)
    base = scenario(latency_p95_s=1.0, upstream_attempts_per_generation=1.0, lost_generations=0)
    assert {c.subject for c in diff(report(base), report(worse)).regressions} == {
        "metric latency_p95_s", "metric upstream_attempts_per_generation", "metric lost_generations"}


def test_a_metric_measured_on_one_side_only_is_a_change_not_a_regression():
    comparison = diff(report(), report(scenario(recovery_s=None)))
    assert comparison.regressions == []
    assert [(c.subject, c.after, c.note) for c in comparison.changes] == [
        ("metric recovery_s", "not measured", "no longer measured")]


def test_tolerances_can_be_overridden_part_by_part():
    base, new = report(scenario(recovery_s=10.0)), report(scenario(recovery_s=14.0))
    assert diff(base, new).regressions == []  # +40% is within the default 50%
    assert diff(base, new, "recovery_s=20%").regressions
    assert diff(base, new, "recovery_s=20%", "recovery_s=5").regressions == []  # +4 s is within 5 s
    assert diff(report(), report(scenario(success_rate=0.85)), "success_rate=0.01").regressions
    assert diff(report(), report(scenario(success_rate=0.85)), "success_rate=0.2").regressions == []
    assert tolerances([parse_tolerance("recovery_s=3")])["recovery_s"] == Tolerance(absolute=3.0, relative=0.5)


@pytest.mark.parametrize("text, problem", [
    ("recovery_s", "expected METRIC=VALUE"), ("requests=3", "expected METRIC=VALUE"),
    ("recovery_s=fast", "not a number"), ("recovery_s=-1", "0 or more"), ("recovery_s=nan", "finite")])
def test_a_malformed_tolerance_is_refused(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_tolerance(text)


def test_every_watched_metric_is_one_the_runs_measure():
    assert set(WATCHED) <= set(METRICS)


def test_an_ungated_profiles_regressions_are_shown_but_do_not_fail():
    base = report(scenario(profile="as_written", gated=False), gate=("hardened",))
    new = report(scenario(profile="as_written", gated=False, outcome="failed"), gate=("hardened",))
    comparison = diff(base, new)
    assert comparison.regressions == [] and subjects(comparison.ungated_regressions) == [("regression", "outcome")]


def test_new_and_removed_scenarios_are_shown_and_do_not_fail():
    comparison = diff(report(scenario("fal_down")), report(scenario("db_down", outcome="failed")))
    assert comparison.regressions == []
    assert [(c.kind, c.scenario) for c in comparison.changes] == [("removed", "fal_down"), ("new", "db_down")]


def test_a_schema_2_baseline_with_the_report_profile_lines_up_with_as_written():
    claim = ("Retries: 3 attempts with exponential backoff", "report", "held")
    base = report(scenario(profile="report"), claims=[claim], gate=("report", "hardened"), schema=2)
    new = report(scenario(profile="as_written", outcome="failed"), claims=[(claim[0], "as_written", "not held")],
                 gate=("as_written", "hardened"))
    comparison = diff(base, new)
    assert [(c.subject, c.profile) for c in comparison.regressions] == [
        ("outcome", "as_written"), (f"claim {claim[0]}", "as_written")]
    assert comparison.of_kind("new", "removed") == []


def write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_the_readable_schemas_run_from_2_to_the_newest_written():
    assert READABLE_SCHEMA_VERSIONS[0] == 2 and READABLE_SCHEMA_VERSIONS[-1] == SCHEMA_VERSION


@pytest.mark.parametrize("content, problem", [
    ('{"schema_version": 2,', "not JSON"),
    ("[1, 2]", "not a genchaos report.json"),
    ('{"verdict": "pass"}', "not a genchaos report.json"),
    (report(schema=1), "schema_version 1 is not one this diff reads"),
    (report(schema=SCHEMA_VERSION + 1), f"schema_version {SCHEMA_VERSION + 1} is not one"),
    (report(scenario(outcome="great")), "scenarios.0.outcome"),
    (report() | {"scenarios": [{"name": "x"}]}, "scenarios.0.profile: Field required"),
])
def test_a_file_that_is_not_a_readable_report_is_refused_with_the_reason(tmp_path, content, problem):
    with pytest.raises(ReportError, match=problem):
        load_report(write(tmp_path / "report.json", content))


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ReportError, match="no such file"):
        load_report(tmp_path / "absent.json")


def test_markdown_puts_regressions_in_a_table_and_folds_the_rest():
    base = report(scenario(checks={"a|b": "held"}), scenario("db_down"))
    new = report(scenario(outcome="failed", checks={"a|b": "not held"}), scenario("db_down", success_rate=1.0))
    text = markdown(diff(base, new), "new against base")
    assert ":x: **Regressed**" in text and "### Regressions (2)" in text
    assert "| fal_down | hardened | check a\\|b | held | not held |  |" in text
    assert "<details><summary>Improvements (1)</summary>" in text
    assert ":white_check_mark: **No regression**" in markdown(diff(base, base), "same")


def genchaos_diff(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(GENCHAOS), "diff", *map(str, args)], capture_output=True, text=True, timeout=60)


def test_the_command_exits_0_1_or_2_with_a_message(tmp_path):
    base = write(tmp_path / "base.json", report(scenario(profile="report"), scenario(), schema=2))
    same = write(tmp_path / "same.json", report(scenario(profile="as_written"), scenario()))
    worse = write(tmp_path / "worse.json", report(scenario(profile="as_written"), scenario(success_rate=0.5)))

    result = genchaos_diff(base, same)
    assert result.returncode == 0, result.stderr
    assert "no regression" in result.stdout

    result = genchaos_diff(base, worse, "--markdown")
    assert result.returncode == 1, result.stderr
    assert "### Regressions (1)" in result.stdout
    assert "| fal_down | hardened | metric success_rate | 95.0% (n=200) | 50.0% (n=200) |" in result.stdout
    assert genchaos_diff(base, worse, "--tolerance", "success_rate=0.5").returncode == 0

    for bad, message in [(tmp_path / "absent.json", "absent.json: no such file"),
                         (write(tmp_path / "v1.json", report(schema=1)), "schema_version 1")]:
        result = genchaos_diff(base, bad)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    result = genchaos_diff(base, worse, "--tolerance", "speed=1")
    assert result.returncode == 2 and "--tolerance" in result.stderr
