"""The report writers: report.json's contract shape, junit.xml, a self-contained report.html, traces.jsonl."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from chaos.judge.claims import audit
from chaos.judge.verdicts import judge
from chaos.report import write_reports
from chaos.run.observations import BreakerSample, FaultWindow, Observation, RequestRecord
from chaos.scenarios.model import Scenario

SCENARIO = Scenario.model_validate({
    "name": "fal_down", "description": "d", "load": {"rate_per_s": 20, "duration_s": 6},
    "faults": [{"at": 2, "for": 2, "down": "fal"}],
    "checks": [{"metric": "success_rate", "phase": "before", "min": 0.8},
               {"metric": "breaker_opened", "equals": True}]})


def result(profile: str, opened: bool):
    requests = [RequestRecord(t=t / 10, status=202, latency_s=0.01, trace_id=str(t), generation_id=f"g{t}",
                              final_status="completed" if not 18 <= t < 40 else "failed", terminal_t=t / 10 + 0.3)
                for t in range(60)]
    samples = [BreakerSample(2.5, {"fal": "open" if opened else "closed"}), BreakerSample(4.5, {"fal": "closed"})]
    down = FaultWindow(2, 4, "fal proxy down", dependency="fal", kind="down", proxy="fal", proxy_bytes=0.0)
    obs = Observation(scenario="fal_down", profile=profile, timing="fast", started_at=0, duration_s=6,
                      requests=requests, breaker_samples=samples, fault_windows=[down])
    return judge(SCENARIO, obs)


def write(tmp_path, traces_files=(), gate=("as_written", "hardened")):
    results = [result("as_written", opened=False), result("hardened", opened=True)]
    return write_reports(tmp_path / "out", results, audit(results), list(gate), list(traces_files))


def test_report_json_has_the_contract_shape(tmp_path):
    write(tmp_path)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdict"] == "fail"
    assert [(s["name"], s["profile"], s["verdict"]) for s in report["scenarios"]] == [
        ("fal_down", "as_written", "fail"), ("fal_down", "hardened", "pass")]
    scenario = report["scenarios"][0]
    assert report["schema_version"] == 3 and report["profile_aliases"] == {"report": "as_written"}
    assert {"name", "passed", "expected", "observed", "status", "n", "interval"} <= scenario["checks"][0].keys()
    assert scenario["outcome"] == "failed" and scenario["gated"] is True
    metrics = scenario["metrics"]
    for key, kind in [("requests", int), ("success_rate", float), ("rate_503", float), ("breaker_opened", bool),
                      ("upstream_attempts_per_generation", float), ("lost_generations", int)]:
        assert isinstance(metrics[key], kind), key
    assert metrics["time_to_open_s"] is None and isinstance(metrics["recovery_s"], float)
    assert {"claim", "profile", "held", "evidence"} <= report["claims"][0].keys()
    assert {c["profile"] for c in report["claims"]} == {"as_written", "hardened"}


def test_gating_on_the_passing_profile_passes(tmp_path):
    assert write(tmp_path, gate=("hardened",))["verdict"] == "pass"


def test_junit_has_one_case_per_scenario_and_profile_with_expected_vs_observed(tmp_path):
    write(tmp_path)
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("genchaos.as_written", "fal_down"), ("genchaos.hardened", "fal_down")]
    failure = cases[0].find("failure")
    assert "breaker_opened: not held, expected == True, observed False" in failure.text
    assert cases[1].find("failure") is None and root.get("failures") == "1"
    assert all(c.get("time") is not None for c in cases)


def test_junit_shows_an_ungated_profiles_findings_as_skipped_not_failed(tmp_path):
    write(tmp_path, gate=("hardened",))
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    report_case = root.find(".//testcase[@classname='genchaos.as_written']")
    assert report_case.find("failure") is None
    assert "not gated" in report_case.find("skipped").get("message")
    assert root.get("failures") == "0" and root.get("skipped") == "1"


def test_html_is_self_contained_with_charts_checks_and_claims(tmp_path):
    write(tmp_path)
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<svg" in html and 'class="fault"' in html and "<polyline" in html
    assert "Circuit breaker opens after 5 failures" in html and "breaker_opened" in html
    for external in ("<script src", "<link", "src=\"http", "url(http"):
        assert external not in html


def test_traces_are_copied_when_the_stack_wrote_them_and_empty_otherwise(tmp_path):
    traces = tmp_path / "service-traces.jsonl"
    traces.write_text('{"trace_id": "abc"}\n')
    write(tmp_path, traces_files=[str(traces)])
    assert (tmp_path / "out" / "traces.jsonl").read_text() == '{"trace_id": "abc"}\n'
    write(tmp_path, traces_files=[str(tmp_path / "absent.jsonl")])
    assert (tmp_path / "out" / "traces.jsonl").read_text() == ""


def test_the_traces_of_every_lane_are_joined_into_one_file(tmp_path):
    lanes = [tmp_path / "lane-0.jsonl", tmp_path / "lane-1.jsonl"]
    lanes[0].write_text('{"trace_id": "a"}\n')
    lanes[1].write_text('{"trace_id": "b"}\n')
    write(tmp_path, traces_files=[str(lanes[0]), None, str(lanes[1])])
    assert (tmp_path / "out" / "traces.jsonl").read_text() == '{"trace_id": "a"}\n{"trace_id": "b"}\n'
