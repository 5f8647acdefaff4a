"""report.json: the shape in DESIGN.md (verdict, scenarios with checks and metrics, claims) plus extras."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from chaos.contract.names import PROFILE_ALIASES, TIMING_ALIASES
from chaos.judge.claims import ClaimResult, failed_claims
from chaos.judge.verdicts import ScenarioResult, overall_verdict

# 2: checks carry status, n and interval; claims' `held` may be "inconclusive"; scenarios carry
# `outcome` (passed | failed | inconclusive | invalid), `duration_s` and the service's `timings`.
# 3: the resilience profile once called "report" is "as_written" and the "report" timing preset is
# "real"; `profile_aliases` and `timing_aliases` map the old names for readers of older reports.
# Scenarios' `telemetry` (what the service said about itself against what happened) came within 3, as a key
# readers may ignore; reports written before it lack the key, which reads as no rows.
SCHEMA_VERSION = 3


def build_report(results: list[ScenarioResult], claims: list[ClaimResult], gated_profiles: list[str]) -> dict[str, Any]:
    failing_claims = failed_claims(claims, gated_profiles)
    return {
        "schema_version": SCHEMA_VERSION,
        "profile_aliases": dict(PROFILE_ALIASES), "timing_aliases": dict(TIMING_ALIASES),
        "verdict": overall_verdict(results, gated_profiles, len(failing_claims)),
        "gate": list(gated_profiles),
        "failed_claims": [f"{c.claim} [{c.profile}]" for c in failing_claims],
        "scenarios": [{
            "name": r.name, "profile": r.profile, "verdict": r.verdict, "outcome": r.outcome, "timing": r.timing,
            "gated": r.profile in gated_profiles, "duration_s": r.duration_s, "timings": r.timings,
            "checks": [dataclasses.asdict(c) for c in r.checks], "telemetry": r.telemetry,
            "metrics": r.metrics, "faults": r.faults, "timeline": r.timeline, "settings": r.settings,
            "error": r.error,
        } for r in results],
        "claims": [dataclasses.asdict(c) for c in claims],
    }


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
