"""The report's builders on synthetic data: chart geometry (fault windows, breaker bands, gaps), the series
the runner records for them, exemplar picking from OTLP/JSON traces, waterfalls, the claims table, and the
service's telemetry beside what happened in every report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from chaos.judge.checks import CheckResult
from chaos.judge.measures import breaker_states, exemplar_candidates, timeline
from chaos.judge.verdicts import ScenarioResult
from chaos.report import write_reports
from chaos.report.charts import COLOURS, LEFT, RIGHT, WIDTH, breaker_chart, rate_chart, scenario_charts, time_axis
from chaos.report.exemplars import TraceIndex, scenario_exemplars, waterfall
from chaos.report.html import claims_table, render_html
from chaos.report.json_report import build_report
from chaos.report.waterfall import waterfall_svg
from chaos.run.observations import BreakerSample, Observation, RequestRecord

SVG = "{http://www.w3.org/2000/svg}"
PLOT_WIDTH = WIDTH - LEFT - RIGHT


def svg(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def rects(root: ET.Element, css_class: str) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if css_class in (r.get("class") or "").split()]


def scenario(**extra) -> dict:
    return {"name": "fal_down", "profile": "hardened",
            "timeline": [{"t": float(t), "requests": 2, "success_rate": 1.0, "rate_503": 0.0} for t in range(10)],
            "faults": [{"start": 2.0, "end": 5.0, "description": "fal proxy down"}],
            "metrics": {"breaker_states": []}, **extra}


def test_fault_windows_are_shaded_at_their_time_on_the_shared_axis():
    chart = svg(rate_chart(scenario(), time_axis(scenario())))
    [shade] = rects(chart, "fault")
    assert float(shade.get("x")) == pytest.approx(LEFT + PLOT_WIDTH * 0.2, abs=0.1)
    assert float(shade.get("width")) == pytest.approx(PLOT_WIDTH * 0.3, abs=0.1)
    assert shade.get("fill") == COLOURS["fault"] and "fal proxy down" in shade.find(f"{SVG}title").text


def test_the_axis_covers_a_fault_that_ends_after_the_last_bucket():
    late = scenario(faults=[{"start": 8.0, "end": 20.0, "description": "late"}])
    assert time_axis(late).span_s == 20.0
    assert time_axis(late).x(20.0) == WIDTH - RIGHT


def test_a_bucket_without_requests_breaks_the_line_instead_of_drawing_zero():
    points = scenario()["timeline"]
    points[4] = {"t": 4.0, "requests": 0, "success_rate": None, "rate_503": None}
    chart = svg(rate_chart(scenario(timeline=points), time_axis(scenario())))
    success = next(g for g in chart.iter(f"{SVG}g") if "success_rate" in (g.get("class") or ""))
    assert len(success.findall(f"{SVG}polyline")) == 2
    assert len(success.findall(f"{SVG}circle")) == 9


def samples(*states: str, breaker: str = "fal") -> list[BreakerSample]:
    return [BreakerSample(t=i * 0.5, states={breaker: s, "database": "closed"}) for i, s in enumerate(states)]


def test_breaker_samples_become_contiguous_intervals_per_breaker():
    obs = Observation(scenario="s", profile="hardened", timing="fast", started_at=0, duration_s=3,
                      breaker_samples=samples("closed", "closed", "open", "open", "half_open", "closed"))
    fal = [(i["state"], i["start"], i["end"]) for i in breaker_states(obs) if i["breaker"] == "fal"]
    assert fal == [("closed", 0.0, 1.0), ("open", 1.0, 2.0), ("half_open", 2.0, 2.5), ("closed", 2.5, 2.5)]
    assert [(i["state"], i["start"], i["end"]) for i in breaker_states(obs) if i["breaker"] == "database"] == [
        ("closed", 0.0, 2.5)]


def test_breaker_timeline_draws_one_band_per_state_interval_in_one_row_per_breaker():
    obs = Observation(scenario="s", profile="hardened", timing="fast", started_at=0, duration_s=3,
                      breaker_samples=samples("closed", "open", "open", "half_open", "closed", "open"))
    data = scenario(metrics={"breaker_states": breaker_states(obs)})
    chart = svg(breaker_chart(data, time_axis(data)))
    assert len(rects(chart, "open")) == 2 and len(rects(chart, "half_open")) == 1
    assert len(rects(chart, "closed")) == 3  # fal twice, database once
    assert {r.get("fill") for r in rects(chart, "open")} == {COLOURS["open"]}
    assert [t.text for t in chart.iter(f"{SVG}text") if t.text in ("fal", "database")] == ["fal", "database"]
    assert len(rects(chart, "fault")) == 1


def test_every_chart_of_a_scenario_says_what_is_missing_instead_of_drawing_nothing():
    html = scenario_charts(scenario())
    assert "no generation completed" in html and "no breaker state was sampled" in html
    assert scenario_charts(scenario(timeline=[])) == "<p>No timeline recorded.</p>"


def request(t: float, **fields) -> RequestRecord:
    return RequestRecord(t=t, latency_s=0.01, trace_id=f"trace{t}", **fields)


def test_timeline_holds_latency_percentiles_of_completed_generations_per_second():
    obs = Observation(scenario="s", profile="hardened", timing="fast", started_at=0, duration_s=2, requests=[
        *(request(0.1 * i, status=202, generation_id=f"g{i}", final_status="completed",
                  terminal_t=0.1 * i + 0.1 * (i + 1)) for i in range(10)),
        request(1.2, status=503, reason_503="breaker_open", causes=("breaker_open",))])
    first, second, _ = timeline(obs)
    assert first["latency_p50_s"] == pytest.approx(0.5) and first["latency_p99_s"] == pytest.approx(1.0)
    assert second["latency_p50_s"] is None and second["rate_503"] == 1.0


def test_exemplar_candidates_put_the_most_submitted_generation_first():
    obs = Observation(scenario="s", profile="hardened", timing="fast", started_at=0, duration_s=2, requests=[
        request(0.0, status=202, generation_id="once", final_status="completed", terminal_t=5.0),
        request(0.5, status=202, generation_id="thrice", final_status="completed", terminal_t=1.0),
        request(1.0, status=503, reason_503="breaker_open", causes=("breaker_open",)),
        request(1.1, status=503, reason_503="overloaded", causes=("overloaded",))])
    log = {"once": [{}], "thrice": [{}, {}, {}]}
    candidates = exemplar_candidates(obs, log)
    assert candidates["breaker_open"] == ["trace1.0"]
    assert list(candidates["generations"]) == ["thrice", "once"]


def span(trace: str, span_id: str, name: str, start_ms: float, end_ms: float, parent: str | None = None,
         attributes: dict | None = None, events: list | None = None) -> dict:
    def value(v):
        return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": str(v)}
    return {"traceId": trace, "spanId": span_id, "parentSpanId": parent or "", "name": name,
            "startTimeUnixNano": str(int(1e18 + start_ms * 1e6)), "endTimeUnixNano": str(int(1e18 + end_ms * 1e6)),
            "attributes": [{"key": k, "value": value(v)} for k, v in (attributes or {}).items()],
            "events": events or [], "status": {}}


def worker_trace(trace: str, generation_id: str, attempts: int) -> list[dict]:
    spans = [span(trace, "p", "generation.process", 0, 900, attributes={"genchaos.generation_id": generation_id}),
             span(trace, "f", "generation.fal", 10, 800, parent="p")]
    for n in range(1, attempts + 1):
        spans.append(span(trace, f"a{n}", "fal.attempt", 100 * n, 100 * n + 50, parent="f",
                          attributes={"genchaos.attempt": n,
                                      "genchaos.outcome": "error" if n < attempts else "success"}))
    spans[1]["events"] = [{"name": "retry", "timeUnixNano": str(int(1e18 + 160e6)),
                           "attributes": [{"key": "sleep_s", "value": {"doubleValue": 0.25}}]}]
    return spans


def request_trace(trace: str, duration_ms: float = 3) -> list[dict]:
    return [span(trace, "s", "POST /api/v1/generations", 0, duration_ms, parent="client-span",
                 attributes={"http.response.status_code": 503, "genchaos.503_reason": "breaker_open"}),
            span(trace, "x", "POST /api/v1/generations http send", 2, 3, parent="s")]


def test_waterfall_rows_follow_the_span_tree_without_asgi_noise():
    rows = waterfall(worker_trace("w", "g1", attempts=2)[::-1])
    assert [(r["name"], r["depth"]) for r in rows] == [
        ("generation.process", 0), ("generation.fal", 1), ("fal.attempt", 2), ("fal.attempt", 2)]
    assert [r["error"] for r in rows] == [False, False, True, False]
    assert rows[1]["events"][0] == {"name": "retry", "t_ms": pytest.approx(160), "attributes": {"sleep_s": 0.25}}
    assert [r["name"] for r in waterfall(request_trace("r"))] == ["POST /api/v1/generations"]


def test_exemplars_are_a_fast_failure_and_the_generation_with_the_most_fal_attempts():
    index = TraceIndex([*request_trace("slow503", duration_ms=400), *request_trace("r503"),
                        *worker_trace("w1", "g1", 1), *worker_trace("w3", "g3", 3)])
    candidates = {"breaker_open": ["slow503", "not-in-file", "r503"],
                  "generations": {"g1": "req1", "g3": "req3", "gx": "reqx"}}
    fast, retried = scenario_exemplars(candidates, index)
    assert (fast["kind"], fast["trace_id"], fast["spans"][0]["error"]) == ("breaker_open", "r503", True)
    assert fast["spans"][0]["attributes"]["http.response.status_code"] == 503
    assert (retried["kind"], retried["trace_id"], retried["linked_trace_id"]) == ("retried_generation", "w3", "req3")
    assert "3 FAL attempts" in retried["title"]
    assert scenario_exemplars({"generations": {"g1": "req1"}}, index) == []


def test_waterfall_svg_has_a_bar_per_span_and_a_mark_per_retry():
    chart = svg(waterfall_svg(waterfall(worker_trace("w", "g", 3)), "retried"))
    bars = [r for r in chart.iter(f"{SVG}rect") if "bar" in (r.get("class") or "").split()]
    assert len(bars) == 5 and sum("error" in r.get("class") for r in bars) == 2
    assert len([p for p in chart.iter(f"{SVG}path") if "retry" in p.get("class")]) == 1
    texts = [t.text for t in chart.iter(f"{SVG}text")]
    assert "fal.attempt #3" in texts and "50.0 ms" in texts


def test_claims_table_has_a_row_per_claim_and_a_column_per_profile():
    claims = [{"claim": c, "profile": p, "held": held, "measured": measured, "evidence": f"{c}/{p}"}
              for c, p, held, measured in [("A", "as_written", False, True), ("A", "hardened", True, True),
                                           ("B", "as_written", False, False), ("B", "hardened", True, True),
                                           ("C", "as_written", "inconclusive", True), ("C", "hardened", None, False)]]
    table = ET.fromstring(claims_table(claims).replace("&nbsp;", " "))
    header, *rows = table.findall("tr")
    assert [th.text for th in header] == ["claim", "as_written profile", "hardened profile"]
    cells = [[td.find("span").text if td.find("span") is not None else td.text for td in row] for row in rows]
    assert cells == [["A", "not held", "held"], ["B", "not measured", "held"],
                     ["C", "inconclusive", "not measured"]]


def test_write_reports_adds_exemplars_to_report_json_and_the_page(tmp_path):
    traces = tmp_path / "traces.jsonl"
    traces.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": worker_trace("w2", "g2", 2)}]}]})
                      + "\n{cut short\n")
    result = ScenarioResult(name="retry_backoff", profile="hardened", timing="fast", verdict="pass", checks=[],
                            metrics={"requests": 1, "exemplar_candidates": {"breaker_open": [],
                                                                            "generations": {"g2": "req2"}}})
    report = write_reports(tmp_path / "out", [result], [], ["hardened"], [str(traces)])
    assert [e["kind"] for e in report["scenarios"][0]["exemplars"]] == ["retried_generation"]
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["scenarios"][0]["exemplars"][0]["trace_id"] == "w2"
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'class="waterfall"' in html and "needed 2 FAL attempts" in html


TELEMETRY = [
    {"aspect": "503s counted by cause", "service_said": "genchaos_http_503_total: fal_unavailable 0",
     "happened": "clients received 14 503s: fal_unavailable 14", "status": "not held",
     "tolerance": "equal, give or take one per unanswered request (2)"},
    {"aspect": "breaker state gauge", "service_said": "genchaos_breaker_state{dependency=\"fal\"} open at 2.1 s",
     "happened": "clients saw <breaker_open> from 2.3 s", "status": "held", "tolerance": "within one sample (0.1 s)"},
    {"aspect": "traces joined to requests", "service_said": "unmeasured: the contract names no traces file",
     "happened": "40 requests sent", "status": "unmeasured", "tolerance": "every request"},
]


def telemetry_results() -> list[ScenarioResult]:
    """A failed scenario whose service miscounted its 503s, and a passed one that compared no telemetry."""
    told = ScenarioResult(name="fal_down", profile="hardened", timing="fast", verdict="fail", outcome="failed",
                          checks=[CheckResult("success_rate >= 0.9", False, 0.9, 0.5, "not held"),
                                  CheckResult("idempotent", False, True, "unmeasured: no idempotency claimed",
                                              "unmeasured")],
                          metrics={"requests": 40}, telemetry=TELEMETRY)
    silent = ScenarioResult(name="baseline", profile="hardened", timing="fast", verdict="pass", checks=[],
                            metrics={"requests": 40})
    return [told, silent]


def test_report_json_carries_each_scenarios_telemetry_rows(tmp_path):
    write_reports(tmp_path, telemetry_results(), [], ["hardened"], [])
    told, silent = json.loads((tmp_path / "report.json").read_text())["scenarios"]
    assert told["telemetry"] == TELEMETRY and silent["telemetry"] == []


def test_the_telemetry_table_marks_disagreement_greys_the_unmeasured_and_escapes_everything():
    page = render_html(build_report(telemetry_results(), [], ["hardened"]))
    told, silent = page.split('<section class="scenario"')[1:]
    table = ET.fromstring(told[told.index('<table class="telemetry">'):].split("</table>")[0] + "</table>")
    header, *rows = table.findall("tr")
    assert [th.text for th in header] == ["aspect", "the service said", "what happened", "tolerance", "result"]
    assert [(row.get("class"), row[0].text, row[4].find("span").text) for row in rows] == [
        ("disagrees", "503s counted by cause", "not held"), ("", "breaker state gauge", "held"),
        ("unmeasured", "traces joined to requests", "unmeasured")]
    assert rows[1][1].text == 'genchaos_breaker_state{dependency="fal"} open at 2.1 s'
    assert rows[1][2].text == "clients saw <breaker_open> from 2.3 s"
    assert rows[2][1].text == "unmeasured: the contract names no traces file"
    assert told.index('class="checks"') < told.index("What the service said, and what happened")
    assert "What the service said" not in silent and 'class="telemetry"' not in silent


def test_junit_fails_on_disagreeing_telemetry_beside_the_checks_and_lists_the_unmeasured(tmp_path):
    write_reports(tmp_path, telemetry_results(), [], ["hardened"], [])
    told, silent = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    failure = told.find("failure")
    assert "success_rate >= 0.9: not held" in failure.get("message")
    assert ("503s counted by cause: not held, the service said genchaos_http_503_total: fal_unavailable 0; "
            "what happened: clients received 14 503s: fal_unavailable 14") in failure.get("message")
    assert "breaker state gauge" not in failure.text
    assert told.find("system-out").text.splitlines() == [
        "unmeasured idempotent: unmeasured: no idempotency claimed",
        "unmeasured traces joined to requests: unmeasured: the contract names no traces file"]
    assert silent.find("failure") is None and silent.find("system-out") is None
