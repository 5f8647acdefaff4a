"""A service genchaos was not written for, judged only through its contract (examples/lumen): its
correct behaviour passes baseline with every image checked byte for byte against FAL's, and the same
baseline fails a copy that stores half of each image or accepts the report's unsigned legacy token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.contract.model import load_contract
from chaos.judge.verdicts import ScenarioResult
from chaos.mutants.catalogue import load_defects
from chaos.mutants.planting import plant
from chaos.run.runner import EmbeddedTarget
from chaos.scenarios.catalogue import load_catalogue, select
from chaos.stack.embedded import EmbeddedStack
from chaos.suite import run_suite

LUMEN = Path(__file__).resolve().parents[2] / "examples" / "lumen"
pytestmark = [pytest.mark.chaos, pytest.mark.slow]


@pytest.fixture(scope="module")
def lumen_stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(contract=load_contract(LUMEN / "genchaos.yaml"), profile="as_written") as stack:
        yield stack


def baseline_on(stack: EmbeddedStack, copy: Path | None) -> ScenarioResult:
    stack.service_root = copy
    [result] = run_suite(EmbeddedTarget(stack), select(load_catalogue(), ["baseline"]), ["as_written"])
    return result


def check(result: ScenarioResult, name: str):
    return next(c for c in result.checks if c.name == name)


def planted(defect_name: str, root: Path) -> Path:
    catalogue = load_defects(LUMEN / "defects.yaml")
    defect = next(d for d in catalogue.defects if d.name == defect_name)
    return plant(defect, root, catalogue.package)


def test_lumen_passes_baseline_with_every_image_verified(lumen_stack):
    result = baseline_on(lumen_stack, None)
    assert result.passed, [(c.name, c.status, c.observed) for c in result.checks if not c.passed]
    assert result.metrics["image_mismatches"] == 0
    assert result.metrics["success_rate"] == 1.0 and result.metrics["requests"] >= 30
    assert check(result, "idempotency_violations").status == "unmeasured"  # lumen claims no keys


def test_halved_images_fail_baseline_on_images(lumen_stack, tmp_path):
    result = baseline_on(lumen_stack, planted("stored_image_halved", tmp_path))
    assert not result.passed
    assert check(result, "image_mismatches").status == "not held"
    assert result.metrics["image_mismatches"] == result.metrics["requests"] - result.metrics["failed_generations"]


def test_accepting_the_legacy_token_fails_the_forged_token_check_naming_it(lumen_stack, tmp_path):
    result = baseline_on(lumen_stack, planted("legacy_tokens_always_accepted", tmp_path))
    forged = check(result, "forged_tokens_accepted")
    assert forged.status == "not held"
    assert "supabase_token_<uuid>" in str(forged.observed)
