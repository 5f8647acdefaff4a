"""Prometheus config, recording rules and alerts: promtool accepts them, their unit tests pass
and can fail, and every alert is tested both firing and not firing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.dashboards.promtools import DASHBOARDS, RULES_DIR, known_metric_names, metric_names, rule_groups

PROMETHEUS_DIR = DASHBOARDS / "prometheus"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
SLO_WINDOWS = ("5m", "30m", "1h", "6h", "3d")


def run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=120, cwd=cwd)


def alerts() -> list[dict]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_rule_files(promtool):
    result = run(promtool, "check", "rules", *sorted(RULES_DIR.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_alert_expression(promtool, tmp_path):
    broken = tmp_path / "broken.rules.yml"
    text = (RULES_DIR / "genchaos-alerts.rules.yml").read_text()
    broken.write_text(text.replace("genchaos:slo_burn_rate:rate1h > 14.4", "genchaos:slo_burn_rate:rate1h > > 14.4"))
    result = run(promtool, "check", "rules", broken)
    assert result.returncode != 0
    assert "parse error" in (result.stdout + result.stderr)


def test_prometheus_config_is_valid_and_loads_the_rules(promtool):
    result = run(promtool, "check", "config", PROMETHEUS_DIR / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    for rule_file in RULES_DIR.glob("*.yml"):
        assert rule_file.name in result.stdout, f"prometheus.yml does not load {rule_file.name}"


def test_rule_unit_tests_pass(promtool):
    assert RULE_TESTS, "no promtool rule tests found"
    result = run(promtool, "test", "rules", *RULE_TESTS, cwd=PROMETHEUS_DIR / "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_catch_a_wrong_burn_rate_threshold(promtool, tmp_path):
    """The unit tests fail when the Workbook's 14.4x factor is changed: they can fail."""
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, copy)
    alerts_file = copy / "rules" / "genchaos-alerts.rules.yml"
    alerts_file.write_text(alerts_file.read_text().replace("> 14.4", "> 28.8"))
    result = run(promtool, "test", "rules", "burn-rate-alerts.test.yml", cwd=copy / "tests")
    assert result.returncode != 0
    assert "GenchaosErrorBudgetBurnFast" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing():
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - firing == set(), "alerts without a firing test"
    assert names - silent == set(), "alerts without a not-firing test"


def test_alerts_carry_severity_and_a_runbook_that_exists():
    runbooks = (DASHBOARDS / "RUNBOOKS.md").read_text()
    anchors = {re.sub(r"[^a-z0-9-]", "", heading.lower().replace(" ", "-"))
               for heading in re.findall(r"^## (.+)$", runbooks, flags=re.MULTILINE)}
    for rule in alerts():
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        anchor = annotations["runbook_url"].split("#", 1)[1]
        assert anchor in anchors, f"{rule['alert']}: no runbook section #{anchor} in RUNBOOKS.md"


def test_burn_rate_alerts_use_the_workbook_windows_and_factors():
    expected = {
        "GenchaosErrorBudgetBurnFast": ("1h", "5m", "14.4", "page"),
        "GenchaosErrorBudgetBurnMedium": ("6h", "30m", "6", "page"),
        "GenchaosErrorBudgetBurnSlow": ("3d", "6h", "1", "ticket"),
    }
    by_name = {rule["alert"]: rule for rule in alerts()}
    for name, (long_window, short_window, factor, severity) in expected.items():
        expr = " ".join(by_name[name]["expr"].split())
        assert expr == (f"genchaos:slo_burn_rate:rate{long_window} > {factor} and "
                        f"genchaos:slo_burn_rate:rate{short_window} > {factor}"), name
        assert by_name[name]["labels"]["severity"] == severity


def test_success_and_503_ratios_are_recorded_for_every_window():
    recorded = {rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule}
    for window in SLO_WINDOWS:
        for series in ("slo_success_ratio", "slo_error_ratio", "slo_burn_rate", "http_503_ratio"):
            assert f"genchaos:{series}:rate{window}" in recorded


def test_rules_select_only_documented_metrics():
    known = known_metric_names()
    for group in rule_groups():
        for rule in group["rules"]:
            unknown = metric_names(rule["expr"]) - known
            assert not unknown, f"{rule.get('record') or rule.get('alert')} selects unknown metrics {unknown}"
