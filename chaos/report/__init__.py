"""The run's reports: report.json, report.html, junit.xml and traces.jsonl in one directory."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from chaos.judge.claims import ClaimResult
from chaos.judge.verdicts import ScenarioResult
from chaos.report.exemplars import add_exemplars
from chaos.report.html import write_html
from chaos.report.json_report import build_report, write_json
from chaos.report.junit import write_junit


def write_reports(out_dir: Path, results: list[ScenarioResult], claims: list[ClaimResult],
                  gated_profiles: list[str], traces_files: list[str | None]) -> dict[str, Any]:
    """Write all four files and return the report as written to report.json (with each scenario's
    exemplar traces, picked from traces.jsonl: the given traces files one after another)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    traces = out_dir / "traces.jsonl"
    with traces.open("wb") as joined:
        for traces_file in traces_files:
            if traces_file and Path(traces_file).is_file():
                with open(traces_file, "rb") as part:
                    shutil.copyfileobj(part, joined)
    report = build_report(results, claims, gated_profiles)
    add_exemplars(report, traces)
    write_json(out_dir / "report.json", report)
    write_html(out_dir / "report.html", report)
    write_junit(out_dir / "junit.xml", report)
    return report
