"""Loading scenario files and grouping the catalogue into suites.

Every YAML file in this package is one scenario. The ``full`` suite holds all of them; other
suites (``ci``) are named by the scenarios themselves in their ``suites`` list.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from chaos.scenarios.model import Scenario

CATALOGUE_DIR = Path(__file__).parent
FULL_SUITE = "full"


class ScenarioError(ValueError):
    """A scenario file or name that cannot be used; the message names the file and the field."""


def _field_path(location: tuple) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def load_scenario(path: Path | str) -> Scenario:
    """Parse and validate one scenario file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario file must be a YAML mapping")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_field_path(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ScenarioError(f"{path}: {problems}") from exc


def load_catalogue(directory: Path = CATALOGUE_DIR) -> dict[str, Scenario]:
    """Every scenario of the catalogue by name; each file must be named after its scenario."""
    catalogue: dict[str, Scenario] = {}
    for path in sorted(directory.glob("*.yaml")):
        scenario = load_scenario(path)
        if scenario.name != path.stem:
            raise ScenarioError(f"{path}: name: {scenario.name!r} must match the file name {path.stem!r}")
        catalogue[scenario.name] = scenario
    return catalogue


def suite_names(catalogue: dict[str, Scenario]) -> list[str]:
    named = {suite for scenario in catalogue.values() for suite in scenario.suites}
    return sorted(named | {FULL_SUITE})


def suite(name: str, catalogue: dict[str, Scenario]) -> list[Scenario]:
    """The scenarios of a suite, in catalogue order."""
    if name == FULL_SUITE:
        return list(catalogue.values())
    members = [s for s in catalogue.values() if name in s.suites]
    if not members:
        raise ScenarioError(f"unknown suite {name!r}; known suites: {', '.join(suite_names(catalogue))}")
    return members


def select(catalogue: dict[str, Scenario], names: list[str]) -> list[Scenario]:
    """Scenarios by name, with an error naming any unknown one."""
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        raise ScenarioError(f"unknown scenario(s) {', '.join(unknown)}; `genchaos scenarios` lists the catalogue")
    return [catalogue[n] for n in names]
