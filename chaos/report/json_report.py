"""report.json: the shape in DESIGN.md (verdict, scenarios with checks and metrics, claims) plus extras."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from chaos.claims import ClaimResult
from chaos.verdicts import ScenarioResult, overall_verdict


def build_report(results: list[ScenarioResult], claims: list[ClaimResult], gated_profiles: list[str]) -> dict[str, Any]:
    return {
        "verdict": overall_verdict(results, gated_profiles),
        "gate": list(gated_profiles),
        "scenarios": [{
            "name": r.name, "profile": r.profile, "verdict": r.verdict, "timing": r.timing,
            "checks": [dataclasses.asdict(c) for c in r.checks],
            "metrics": r.metrics, "faults": r.faults, "timeline": r.timeline, "settings": r.settings,
            "error": r.error,
        } for r in results],
        "claims": [dataclasses.asdict(c) for c in claims],
    }


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
