"""The mutation matrix's catalogue stays plantable (every snippet still occurs exactly once in service/,
every planted copy still compiles, every defect names scenarios the ci suite has), and only checks the
unmutated copy passes count as catching a defect."""

from __future__ import annotations

import dataclasses
import py_compile
from pathlib import Path
from types import SimpleNamespace

import pytest

from chaos.mutants.catalogue import DEFECTS
from chaos.mutants.matrix import MatrixError, Outcome, ci_scenarios
from chaos.mutants.planting import PatchError, check_applies, plant
from chaos.scenarios.catalogue import load_catalogue, suite


def test_there_are_at_least_twelve_defects_with_unique_names() -> None:
    names = [d.name for d in DEFECTS]
    assert len(names) >= 12
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.name)
def test_each_snippet_occurs_exactly_once_in_the_service(defect) -> None:
    check_applies(defect)
    assert defect.old != defect.new


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.name)
def test_each_planted_copy_differs_only_in_its_file_and_compiles(defect, tmp_path: Path) -> None:
    copy = plant(defect, tmp_path) / "service"
    source = Path(__file__).parents[2] / "service"
    planted = (copy / defect.file).read_text()
    assert defect.new in planted and planted != (source / defect.file).read_text()
    py_compile.compile(str(copy / defect.file), doraise=True)


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.name)
def test_each_defect_names_ci_scenarios(defect) -> None:
    ci = {s.name for s in suite("ci", load_catalogue())}
    assert defect.scenarios and set(defect.scenarios) <= ci


def test_a_drifted_snippet_is_an_error_naming_the_defect() -> None:
    drifted = dataclasses.replace(DEFECTS[0], old="a line the service never had")
    with pytest.raises(PatchError, match=DEFECTS[0].name):
        check_applies(drifted)


def test_a_scenario_outside_ci_is_an_error_naming_the_defect() -> None:
    stray = dataclasses.replace(DEFECTS[0], scenarios=("no_such_scenario",))
    with pytest.raises(MatrixError, match=f"{DEFECTS[0].name}: no_such_scenario"):
        ci_scenarios([stray])


def _result(name: str, *passed: bool, error: str | None = None) -> SimpleNamespace:
    checks = [SimpleNamespace(name=f"check{i}", passed=p, expected=0, observed=1, status="held" if p else "not held")
              for i, p in enumerate(passed)]
    return SimpleNamespace(name=name, passed=all(passed) and error is None, checks=checks, error=error)


def test_only_checks_the_unmutated_copy_passes_count_as_catches() -> None:
    control = Outcome(None, [_result("baseline", True, False)])
    noisy = Outcome(DEFECTS[0], [_result("baseline", True, False)])
    caught = Outcome(DEFECTS[0], [_result("baseline", False, False)])
    assert noisy.catches(control) == [] and len(noisy.noise(control)) == 1
    assert caught.catches(control) == ["baseline: check0 (expected 0, observed 1)"]


def test_the_unmutated_copy_may_fail_only_its_declared_findings() -> None:
    control = Outcome(None, [_result("retry_backoff", True, False), _result("baseline", True)])
    assert control.unexpected_failures(("retry_backoff: check1",)) == []
    assert control.unexpected_failures(()) == ["retry_backoff: check1"]
    unmeasured = Outcome(None, [SimpleNamespace(name="baseline", error=None, checks=[
        SimpleNamespace(name="idempotency_violations", passed=False, status="unmeasured")])])
    assert unmeasured.unexpected_failures(()) == []
    broken = Outcome(None, [_result("baseline", False, error="service exited")])
    assert broken.unexpected_failures(("baseline: check0",)) == ["baseline: service exited"]


def test_a_broken_run_catches_nothing() -> None:
    control = Outcome(None, [_result("baseline", True)])
    broken = Outcome(DEFECTS[0], [_result("baseline", False, error="service exited")])
    assert broken.catches(control) == [] and broken.errors() == ["baseline: service exited"]

