"""report.html in a real headless Chromium: a short FAL-fault scenario runs on the embedded stack, the
reports are written, and the page must load without console errors while its screenshot shows the
charts, the breaker timeline and the exemplar waterfalls in their colours (pixels, not only DOM). A page
written from hand-made results shows how the service's telemetry rows are drawn."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from chaos.judge.claims import audit
from chaos.judge.verdicts import ScenarioResult
from chaos.report import write_reports
from chaos.report.charts import COLOURS, TOP
from chaos.report.waterfall import BAR_COLOURS, EVENT_COLOURS
from chaos.run.runner import EmbeddedTarget
from chaos.scenarios.model import Scenario
from chaos.stack.embedded import EmbeddedStack
from chaos.suite import run_suite
from tests.report.chromium import Chromium
from tests.report.png import count_colour, decode
from tests.support import require_tool

pytestmark = [pytest.mark.timeout(150), pytest.mark.serial]  # a breaker timeline needs the run's timing

FAL_ERRORS = Scenario.model_validate({
    "name": "fal_errors_briefly", "description": "every FAL submit fails for a few seconds",
    "load": {"rate_per_s": 3, "duration_s": 7, "drain_s": 8},
    "faults": [{"at": 1.5, "for": 2.5, "fal": {"submit_error_rate": 1.0}}],
    "settle_s": 2, "profiles": ["hardened"],
    "checks": [{"metric": "breaker_opened", "equals": True}]})
TRACES_FLUSH_TIMEOUT_S = 10.0  # the service exports spans every 500 ms


def wait_for_traces(traces_file: str, trace_ids: list[str]) -> None:
    """Until the service has exported a span of the last request a waterfall may show."""
    deadline = time.monotonic() + TRACES_FLUSH_TIMEOUT_S
    while trace_ids and time.monotonic() < deadline:
        if Path(traces_file).is_file() and trace_ids[-1] in Path(traces_file).read_text():
            return
        time.sleep(0.2)


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_tool("chromium")


@pytest.fixture(scope="module")
def report_dir(chromium: str, stack: EmbeddedStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    [result] = run_suite(EmbeddedTarget(stack), [FAL_ERRORS], ["hardened"])
    assert result.error is None, result.error
    candidates = result.metrics["exemplar_candidates"]
    wait_for_traces(stack.info.traces_file, [*candidates["breaker_open"], *candidates["generations"].values()])
    out = tmp_path_factory.mktemp("report")
    write_reports(out, [result], audit([result]), ["hardened"], [stack.info.traces_file])
    return out


@pytest.fixture(scope="module")
def page(chromium: str, report_dir: Path) -> dict:
    """What the browser saw: console errors, and the decoded screenshot of every chart and waterfall."""
    with Chromium(chromium) as browser:
        browser.open((report_dir / "report.html").as_uri())
        errors = browser.errors()
        shots = {}
        for selector, header_rows in (("svg.chart", TOP), ("svg.waterfall", 0)):
            for box in browser.boxes(selector):
                assert box["width"] > 500 and box["height"] > 50, box
                width, _, pixels = decode(browser.screenshot(box))
                shots[box["label"]] = pixels[header_rows * width:]  # a chart's legend swatches do not count
        (report_dir / "report.png").write_bytes(browser.screenshot())
        browser.open("data:text/html,<script>console.error('deliberate')</script><img src='file:///missing.png'>")
        probe_errors = browser.errors()[len(errors):]
    return {"errors": errors, "probe_errors": probe_errors, "shots": shots}


def test_the_run_recorded_a_breaker_timeline_503s_and_both_exemplars(report_dir: Path):
    [scenario] = json.loads((report_dir / "report.json").read_text())["scenarios"]
    states = {i["state"] for i in scenario["metrics"]["breaker_states"] if i["breaker"] == "fal"}
    assert {"closed", "open"} <= states
    assert any((p["rate_503"] or 0) > 0 for p in scenario["timeline"])
    assert any(p["latency_p99_s"] is not None for p in scenario["timeline"])
    assert {e["kind"] for e in scenario["exemplars"]} == {"breaker_open", "retried_generation"}
    retried = next(e for e in scenario["exemplars"] if e["kind"] == "retried_generation")
    assert max(s["attributes"].get("genchaos.attempt", 0) for s in retried["spans"]) >= 2
    assert any(e["name"] == "retry" for s in retried["spans"] for e in s["events"])


def test_the_page_loads_without_console_errors(page: dict):
    assert page["errors"] == []
    assert any("deliberate" in e for e in page["probe_errors"]), "the error probe was not seen"


def shot(page: dict, label_start: str) -> list:
    return next(pixels for label, pixels in page["shots"].items() if label.startswith(label_start))


def test_the_screenshot_shows_rates_latency_and_fault_windows(page: dict):
    rates = shot(page, "success and 503 rate")
    assert count_colour(rates, COLOURS["success"]) > 150
    assert count_colour(rates, COLOURS["rate_503"]) > 80
    assert count_colour(rates, COLOURS["fault"]) > 2000
    latency = shot(page, "generation latency")
    assert count_colour(latency, COLOURS["p50"]) > 50 and count_colour(latency, COLOURS["p99"]) > 50
    assert count_colour(latency, COLOURS["fault"]) > 2000


def test_the_screenshot_shows_the_breaker_opening_beneath_the_charts(page: dict):
    breakers = shot(page, "breaker states")
    assert count_colour(breakers, COLOURS["open"]) > 300
    assert count_colour(breakers, COLOURS["closed"]) > 3000


def test_the_screenshot_shows_both_exemplar_waterfalls(page: dict):
    fast = shot(page, "Request failed fast")
    assert count_colour(fast, BAR_COLOURS["error"]) > 100
    retried = shot(page, "Generation")
    assert count_colour(retried, BAR_COLOURS["error"]) > 200  # the failed attempts
    assert count_colour(retried, EVENT_COLOURS["retry"]) > 20


TELEMETRY = [
    {"aspect": "503s counted by cause", "service_said": "genchaos_http_503_total: fal_unavailable 0",
     "happened": "clients received 14 503s: fal_unavailable 14", "status": "not held",
     "tolerance": "equal, give or take one per unanswered request (2)"},
    {"aspect": "readiness", "service_said": "/readyz: fal down from 2.0 s", "happened": "fal proxy down from 2.0 s",
     "status": "held", "tolerance": "within one refresh (0.5 s)"},
    {"aspect": "traces joined to requests", "service_said": "unmeasured: the contract names no traces file",
     "happened": "40 requests sent", "status": "unmeasured", "tolerance": "every request"},
]
ROWS_AS_SHOWN = """[...document.querySelectorAll('#fal_down--hardened table.telemetry tr')].slice(1).map(row => {
    const cell = getComputedStyle(row.cells[0]), box = row.getBoundingClientRect();
    return {text: row.innerText, shown: box.width > 0 && box.height > 0, background: cell.backgroundColor,
            border: cell.borderLeftWidth, colour: cell.color};
})"""


@pytest.fixture(scope="module")
def telemetry_page(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """How the browser draws one scenario's telemetry rows, and what it finds in a scenario without any."""
    told = ScenarioResult(name="fal_down", profile="hardened", timing="fast", verdict="fail", outcome="failed",
                          checks=[], metrics={"requests": 40}, telemetry=TELEMETRY)
    silent = ScenarioResult(name="baseline", profile="hardened", timing="fast", verdict="pass", checks=[],
                            metrics={"requests": 40})
    out = tmp_path_factory.mktemp("telemetry")
    write_reports(out, [told, silent], [], ["hardened"], [])
    with Chromium(chromium) as browser:
        browser.open((out / "report.html").as_uri())
        return {"errors": browser.errors(), "rows": browser.evaluate(ROWS_AS_SHOWN),
                "silent": browser.evaluate("document.getElementById('baseline--hardened').innerText")}


def test_a_disagreeing_telemetry_row_is_highlighted_and_an_unmeasured_one_says_what_is_missing(telemetry_page: dict):
    assert telemetry_page["errors"] == []
    disagrees, agrees, unmeasured = telemetry_page["rows"]
    assert all(row["shown"] for row in telemetry_page["rows"])
    assert "genchaos_http_503_total: fal_unavailable 0" in disagrees["text"] and "not held" in disagrees["text"]
    assert disagrees["background"] != agrees["background"]
    assert float(disagrees["border"].removesuffix("px")) > float(agrees["border"].removesuffix("px"))
    assert "unmeasured: the contract names no traces file" in unmeasured["text"]
    assert unmeasured["colour"] != agrees["colour"]


def test_a_scenario_without_telemetry_rows_has_no_telemetry_table(telemetry_page: dict):
    assert "baseline" in telemetry_page["silent"]
    assert "What the service said" not in telemetry_page["silent"]
