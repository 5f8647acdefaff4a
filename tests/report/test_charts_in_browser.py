"""The latency chart in a real headless Chromium, on data the test chooses: percentiles that coincide
(buckets of one request) must all stay visible, not only the one drawn last."""

from __future__ import annotations

import math
from pathlib import Path

from chaos.report.charts import COLOURS, LATENCY_KEYS, TOP, TimeAxis, latency_chart
from tests.report.chromium import Chromium
from tests.report.png import count_colour, decode
from tests.support import require_tool


def coinciding_latencies(buckets: int) -> dict:
    """A scenario whose every bucket has p50 = p95 = p99, rising and falling so lines slope and level off."""
    timeline = []
    for i in range(buckets):
        value = round(0.5 + 0.3 * max(-0.5, math.sin(i / 3)), 3)
        timeline.append({"t": float(i), "requests": 1, **{key: value for _, key in LATENCY_KEYS}})
    return {"name": "coinciding", "timeline": timeline, "faults": []}


def test_coinciding_percentiles_each_show_their_colour_beneath_the_legend(tmp_path: Path):
    chromium = require_tool("chromium")
    scenario = coinciding_latencies(30)
    page = tmp_path / "chart.html"
    page.write_text(f"<!doctype html><body style='margin:0'>{latency_chart(scenario, TimeAxis(30.0))}</body>")
    with Chromium(chromium) as browser:
        browser.open(page.as_uri())
        [box] = browser.boxes("svg.chart")
        width, _, pixels = decode(browser.screenshot(box))
    plot = pixels[TOP * width:]
    counts = {name: count_colour(plot, COLOURS[name]) for name, _ in LATENCY_KEYS}
    assert all(count > 300 for count in counts.values()), counts
