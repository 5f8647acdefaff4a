"""The GitHub Actions workflow: actionlint passes, and it runs what CI promises."""

from __future__ import annotations

import subprocess

import yaml

from tests.dashboards.promtools import REPO

WORKFLOW = REPO / ".github" / "workflows" / "chaos.yml"


def lint(actionlint: str, path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint, "-no-color", str(path)], capture_output=True, text=True, timeout=60)


def test_actionlint_passes(actionlint):
    result = lint(actionlint, WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(actionlint, tmp_path):
    """The lint above can fail: a misspelt context name is an error."""
    broken = tmp_path / ".github" / "workflows" / "chaos.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text().replace("${{ github.ref }}", "${{ gihtub.ref }}"))
    result = lint(actionlint, broken)
    assert result.returncode != 0
    assert "gihtub" in result.stdout


def test_workflow_runs_the_chaos_suite_uploads_the_report_and_runs_the_tests():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert {"push", "pull_request"} <= set(triggers)
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    runs = [step.get("run", "") for step in steps]
    python = next(step for step in steps if step.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["python-version"] == "3.11"
    assert any("apt-get install" in run and "prometheus" in run for run in runs)
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    assert upload["with"]["path"].rstrip("/") == "reports/latest"
    order = [i for i, run in enumerate(runs) if run.strip() in ("make run", "make test")]
    assert [runs[i].strip() for i in order] == ["make run", "make test"]
    assert order[0] < steps.index(upload) < order[1]
    assert job["env"]["GENCHAOS_REQUIRE_TOOLS"] == "1"


def test_pull_requests_are_compared_with_the_baseline_main_keeps():
    (job,) = yaml.safe_load(WORKFLOW.read_text())["jobs"].values()
    steps = job["steps"]
    save = next(step for step in steps if step.get("uses", "").startswith("actions/cache/save"))
    restore = next(step for step in steps if step.get("uses", "").startswith("actions/cache/restore"))
    assert "refs/heads/main" in save["if"] and "pull_request" in restore["if"]
    assert save["with"]["path"] == restore["with"]["path"] == "baseline/report.json"
    assert restore["with"]["restore-keys"] == save["with"]["key"].split("$")[0]
    (compare,) = [step for step in steps if "genchaos diff" in step.get("run", "")]
    assert "pull_request" in compare["if"] and "!cancelled()" in compare["if"]
    assert ("genchaos diff baseline/report.json reports/latest/report.json --markdown >> \"$GITHUB_STEP_SUMMARY\""
            in compare["run"])
    assert "::notice" in compare["run"]  # a first run, without a baseline, passes with a notice
    assert steps.index(restore) < steps.index(compare)
