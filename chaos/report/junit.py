"""junit.xml: one testcase per scenario x profile; a failure lists each failed check, expected vs observed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def build_junit(report: dict[str, Any]) -> ET.ElementTree:
    scenarios = report["scenarios"]
    failed = [s for s in scenarios if s["verdict"] != "pass"]
    suites = ET.Element("testsuites", name="genchaos", tests=str(len(scenarios)), failures=str(len(failed)))
    suite = ET.SubElement(suites, "testsuite", name="genchaos.chaos", tests=str(len(scenarios)),
                          failures=str(len(failed)))
    for scenario in scenarios:
        case = ET.SubElement(suite, "testcase", classname=f"genchaos.{scenario['profile']}", name=scenario["name"])
        if scenario["verdict"] == "pass":
            continue
        bad = [c for c in scenario["checks"] if not c["passed"]]
        lines = [f"{c['name']}: expected {c['expected']}, observed {c['observed']}" for c in bad]
        failure = ET.SubElement(case, "failure", message="; ".join(lines)[:500], type="ChecksFailed")
        failure.text = "\n".join(lines)
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(path: Path, report: dict[str, Any]) -> None:
    build_junit(report).write(path, encoding="utf-8", xml_declaration=True)
