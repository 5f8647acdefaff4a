"""junit.xml: one testcase per scenario x profile, with its time; a gated failure lists each check that
did not hold (expected vs observed), an ungated profile's failure is <skipped> with the reason, so CI
reporters show red only for what decides the run. Gated claims that read not held are testcases too.
Where the service's own telemetry disagreed with what happened, the failure lists that beside the checks.
Checks and telemetry the service's contract could not give evidence for are listed, unmeasured, in the
testcase's <system-out>."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def _problems(scenario: dict[str, Any]) -> list[str]:
    checks = [f"{c['name']}: {c.get('status', 'not held')}, expected {c['expected']}, observed {c['observed']}"
              for c in scenario["checks"] if not c["passed"] and c.get("status") != "unmeasured"]
    telemetry = [f"{t['aspect']}: not held, the service said {t['service_said']}; what happened: {t['happened']} "
                 f"(tolerance: {t['tolerance']})" for t in scenario.get("telemetry", []) if t["status"] == "not held"]
    return checks + telemetry


def build_junit(report: dict[str, Any]) -> ET.ElementTree:
    scenarios = report["scenarios"]
    gate = set(report.get("gate", []))
    claims = [c for c in report.get("claims", []) if c["profile"] in gate and c.get("held") is False]
    failures = sum(s["verdict"] != "pass" and s["profile"] in gate for s in scenarios) + len(claims)
    skipped = sum(s["verdict"] != "pass" and s["profile"] not in gate for s in scenarios)
    total_time = f"{sum(s.get('duration_s') or 0.0 for s in scenarios):.3f}"
    counts = {"tests": str(len(scenarios) + len(claims)), "failures": str(failures), "skipped": str(skipped),
              "time": total_time}
    suites = ET.Element("testsuites", name="genchaos", **counts)
    suite = ET.SubElement(suites, "testsuite", name="genchaos.chaos", **counts)
    for scenario in scenarios:
        case = ET.SubElement(suite, "testcase", classname=f"genchaos.{scenario['profile']}", name=scenario["name"],
                             time=f"{scenario.get('duration_s') or 0.0:.3f}")
        if scenario["verdict"] != "pass":
            lines = _problems(scenario)
            message = f"{scenario.get('outcome', 'failed')}: " + "; ".join(lines)
            if scenario["profile"] in gate:
                failure = ET.SubElement(case, "failure", message=message[:500], type="ChecksFailed")
                failure.text = "\n".join(lines)
            else:
                ET.SubElement(case, "skipped", message=f"profile {scenario['profile']} is not gated; finding: "
                                                       f"{message}"[:500])
        unmeasured = [f"unmeasured {c['name']}: {c['observed']}" for c in scenario["checks"]
                      if c.get("status") == "unmeasured"]
        unmeasured += [f"unmeasured {t['aspect']}: {t['service_said']}" for t in scenario.get("telemetry", [])
                       if t["status"] == "unmeasured"]
        if unmeasured:
            ET.SubElement(case, "system-out").text = "\n".join(unmeasured)
    for claim in claims:
        case = ET.SubElement(suite, "testcase", classname=f"genchaos.claims.{claim['profile']}", name=claim["claim"],
                             time="0.000")
        ET.SubElement(case, "failure", message=f"not held: {claim['evidence']}"[:500], type="ClaimNotHeld")
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(path: Path, report: dict[str, Any]) -> None:
    build_junit(report).write(path, encoding="utf-8", xml_declaration=True)
