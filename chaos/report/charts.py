"""Inline SVG charts of one scenario, stacked on one time axis: success and 503 rate, generation latency
percentiles, and the breaker state timeline beneath, with the fault windows shaded in each. Plain SVG
(no script, no network), with hover titles on points and bands."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

WIDTH = 1080
LEFT, RIGHT = 64, 16  # room for the y-axis labels and the last x tick label
TOP = 30  # room for the legend
BOTTOM = 34  # room for the x-axis labels and title
PLOT_HEIGHT = 150
BREAKER_ROW, BREAKER_GAP = 18, 8

# Opaque colours, so a screenshot shows them exactly (the browser test looks for them).
COLOURS = {
    "success": "#188038", "rate_503": "#d93025", "fault": "#fbe3b4",
    "p50": "#1a73e8", "p95": "#8430ce", "p99": "#e8710a",
    "closed": "#b7e1c1", "open": "#a50e0e", "half_open": "#f4c20d", "unknown": "#bdbdbd",
    "axis": "#757575", "grid": "#eeeeee", "text": "#333333",
}
LATENCY_KEYS = (("p50", "latency_p50_s"), ("p95", "latency_p95_s"), ("p99", "latency_p99_s"))
# Percentile lines are drawn from p99 down, each narrower than the one beneath, so percentiles that
# coincide (a bucket of a few requests) show as nested bands instead of the last one hiding the rest.
# Each band shows at least 1.5 px on either side, enough for a whole pixel of its colour on one side.
LATENCY_WIDTHS = {"p50": 2.0, "p95": 5.0, "p99": 8.0}
SERIES_WIDTH = 2.5
BREAKER_STATES = ("closed", "open", "half_open")
NICE_STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)


@dataclass(frozen=True)
class TimeAxis:
    """Seconds since the scenario started -> x pixels; shared by every chart of a scenario."""

    span_s: float

    def x(self, t: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * min(max(t, 0.0), self.span_s) / self.span_s

    def ticks(self, max_ticks: int = 12) -> list[float]:
        step = next((s for s in NICE_STEPS if self.span_s / s <= max_ticks), NICE_STEPS[-1])
        return [i * step for i in range(int(self.span_s / step + 1e-9) + 1)]


def bucket_s(timeline: list[dict[str, Any]]) -> float:
    return timeline[1]["t"] - timeline[0]["t"] if len(timeline) > 1 else 1.0


def time_axis(scenario: dict[str, Any]) -> TimeAxis:
    """Long enough for every bucket, fault window and breaker sample of the scenario."""
    timeline = scenario.get("timeline") or []
    ends = [timeline[-1]["t"] + bucket_s(timeline)] if timeline else []
    ends += [f["end"] for f in scenario.get("faults") or []]
    ends += [b["end"] for b in (scenario.get("metrics") or {}).get("breaker_states") or []]
    return TimeAxis(max([1.0, *ends]))


def _fmt(value: float) -> str:
    return f"{value:g}" if value >= 10 or value == int(value) else f"{value:.2g}"


def _svg(height: float, label: str, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" height="{height:.0f}" '
            f'viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-label="{escape(label)}" '
            f'font-family="system-ui,sans-serif" font-size="11" fill="{COLOURS["text"]}">{body}</svg>')


def _legend(items: list[tuple[str, str, str]]) -> str:
    """Swatches along the top: (colour, label, shape) with shape 'line' or 'box'."""
    parts, x = [], LEFT
    for colour, label, shape in items:
        if shape == "line":
            parts.append(f'<line x1="{x}" y1="12" x2="{x + 18}" y2="12" stroke="{colour}" stroke-width="3"/>')
        else:
            parts.append(f'<rect x="{x}" y="6" width="18" height="12" fill="{colour}" stroke="#9e9e9e" '
                         f'stroke-width="0.5"/>')
        parts.append(f'<text x="{x + 24}" y="16">{escape(label)}</text>')
        x += 34 + 6.5 * len(label)
    return f'<g class="legend">{"".join(parts)}</g>'


def fault_shades(scenario: dict[str, Any], axis: TimeAxis, top: float, height: float) -> str:
    """One shaded band per fault window, titled with the fault."""
    return "".join(
        f'<rect class="fault" x="{axis.x(f["start"]):.1f}" y="{top}" '
        f'width="{max(1.0, axis.x(f["end"]) - axis.x(f["start"])):.1f}" height="{height}" '
        f'fill="{COLOURS["fault"]}" shape-rendering="crispEdges">'
        f'<title>{escape(f["description"])}: {f["start"]:.1f}–{f["end"]:.1f} s</title></rect>'
        for f in scenario.get("faults") or [])


def _time_axis_marks(axis: TimeAxis, top: float, height: float, title: bool) -> str:
    bottom = top + height
    parts = [f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="{COLOURS["axis"]}"/>']
    for t in axis.ticks():
        x = axis.x(t)
        parts.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="{COLOURS["axis"]}"/>'
                     f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">{_fmt(t)}</text>')
    if title:
        parts.append(f'<text x="{WIDTH - RIGHT}" y="{bottom + 29}" text-anchor="end">'
                     f'time since the scenario started (s)</text>')
    return "".join(parts)


def _value_axis(top: float, height: float, ticks: list[float], scale_max: float, unit: str) -> str:
    parts = [f'<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{top + height}" stroke="{COLOURS["axis"]}"/>']
    for value in ticks:
        y = top + height - height * value / scale_max
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="{COLOURS["grid"]}"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(unit.format(value))}</text>')
    return "".join(parts)


def _series(timeline: list[dict[str, Any]], key: str, axis: TimeAxis, top: float, height: float,
            scale_max: float, colour: str, label: str, unit: str, width: float = SERIES_WIDTH) -> str:
    """A line broken where the value is missing (no requests), with a titled marker per point."""
    half = bucket_s(timeline) / 2
    segments: list[list[str]] = [[]]
    markers = []
    for point in timeline:
        value = point.get(key)
        if value is None:
            segments.append([])
            continue
        x, y = axis.x(point["t"] + half), top + height - height * min(value, scale_max) / scale_max
        segments[-1].append(f"{x:.1f},{y:.1f}")
        markers.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{width / 2 + 1.25:g}" fill="{colour}"><title>{escape(label)} '
                       f'{escape(unit.format(value))} at {point["t"]:g}–{point["t"] + 2 * half:g} s '
                       f'({point.get("requests", 0)} requests)</title></circle>')
    lines = "".join(f'<polyline points="{" ".join(s)}" fill="none" stroke="{colour}" stroke-width="{width:g}" '
                    f'stroke-linejoin="round"/>' for s in segments if s)
    return f'<g class="series {escape(key)}">{lines}{"".join(markers)}</g>'


def rate_chart(scenario: dict[str, Any], axis: TimeAxis) -> str:
    """Success rate and 503 rate of the requests sent in each bucket, 0..100%."""
    timeline = scenario.get("timeline") or []
    body = [_legend([(COLOURS["success"], "success rate", "line"), (COLOURS["rate_503"], "503 rate", "line"),
                     (COLOURS["fault"], "fault window", "box")]),
            fault_shades(scenario, axis, TOP, PLOT_HEIGHT),
            _value_axis(TOP, PLOT_HEIGHT, [0, 0.25, 0.5, 0.75, 1.0], 1.0, "{:.0%}"),
            _time_axis_marks(axis, TOP, PLOT_HEIGHT, title=False),
            _series(timeline, "success_rate", axis, TOP, PLOT_HEIGHT, 1.0, COLOURS["success"], "success", "{:.0%}"),
            _series(timeline, "rate_503", axis, TOP, PLOT_HEIGHT, 1.0, COLOURS["rate_503"], "503s", "{:.0%}")]
    return _svg(TOP + PLOT_HEIGHT + BOTTOM - 14, f"success and 503 rate of {scenario['name']}", "".join(body))


def nice_ticks(value: float, max_steps: int = 6) -> list[float]:
    """Axis ticks from 0 to just above ``value`` in 1, 2, 2.5 or 5 x 10^n steps, at most ``max_steps``."""
    if value <= 0:
        return [0.0, 1.0]
    raw = value / max_steps
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    return [round(i * step, 9) for i in range(math.ceil(value / step - 1e-9) + 1)]


def latency_chart(scenario: dict[str, Any], axis: TimeAxis) -> str:
    """p50, p95 and p99 generation latency (sent -> completed) of the requests sent in each bucket."""
    timeline = scenario.get("timeline") or []
    values = [p[key] for p in timeline for _, key in LATENCY_KEYS if p.get(key) is not None]
    ticks = nice_ticks(max(values, default=1.0), max_steps=5)
    scale_max = ticks[-1]
    body = [_legend([(COLOURS[name], f"{name} generation latency", "line") for name, _ in LATENCY_KEYS]
                    + [(COLOURS["fault"], "fault window", "box")]),
            fault_shades(scenario, axis, TOP, PLOT_HEIGHT),
            _value_axis(TOP, PLOT_HEIGHT, ticks, scale_max, "{:.3g} s"),
            _time_axis_marks(axis, TOP, PLOT_HEIGHT, title=False)]
    body += [_series(timeline, key, axis, TOP, PLOT_HEIGHT, scale_max, COLOURS[name], name, "{:.2f} s",
                     LATENCY_WIDTHS[name]) for name, key in reversed(LATENCY_KEYS)]
    if not values:
        body.append(f'<text x="{WIDTH / 2}" y="{TOP + PLOT_HEIGHT / 2}" text-anchor="middle">'
                    f'no generation completed</text>')
    return _svg(TOP + PLOT_HEIGHT + BOTTOM - 14, f"generation latency of {scenario['name']}", "".join(body))


def breaker_chart(scenario: dict[str, Any], axis: TimeAxis) -> str:
    """One row per breaker, a colour band per sampled state (closed, open, half-open)."""
    intervals = (scenario.get("metrics") or {}).get("breaker_states") or []
    breakers = list(dict.fromkeys(i["breaker"] for i in intervals))
    height = max(1, len(breakers)) * (BREAKER_ROW + BREAKER_GAP)
    body = [_legend([(COLOURS[s], s.replace("_", "-"), "box") for s in BREAKER_STATES]
                    + [(COLOURS["fault"], "fault window", "box")]),
            fault_shades(scenario, axis, TOP, height)]
    for row, breaker in enumerate(breakers):
        y = TOP + BREAKER_GAP / 2 + row * (BREAKER_ROW + BREAKER_GAP)
        body.append(f'<text x="{LEFT - 6}" y="{y + 13}" text-anchor="end">{escape(breaker)}</text>')
        for i in (i for i in intervals if i["breaker"] == breaker):
            colour = COLOURS.get(i["state"], COLOURS["unknown"])
            body.append(f'<rect class="breaker {escape(i["state"])}" x="{axis.x(i["start"]):.1f}" y="{y}" '
                        f'width="{max(1.0, axis.x(i["end"]) - axis.x(i["start"])):.1f}" height="{BREAKER_ROW}" '
                        f'fill="{colour}" shape-rendering="crispEdges"><title>{escape(breaker)} '
                        f'{escape(i["state"])} {i["start"]:.1f}–{i["end"]:.1f} s</title></rect>')
    if not breakers:
        body.append(f'<text x="{WIDTH / 2}" y="{TOP + height / 2 + 4}" text-anchor="middle">'
                    f'no breaker state was sampled</text>')
    body.append(_time_axis_marks(axis, TOP, height, title=True))
    return _svg(TOP + height + BOTTOM, f"breaker states of {scenario['name']}", "".join(body))


def scenario_charts(scenario: dict[str, Any]) -> str:
    """The three charts of a scenario, one above the other on the same time axis."""
    if not scenario.get("timeline"):
        return "<p>No timeline recorded.</p>"
    axis = time_axis(scenario)
    return (f'<figure class="charts"><figcaption>Requests by send time, per {bucket_s(scenario["timeline"]):g} s'
            f'</figcaption>{rate_chart(scenario, axis)}{latency_chart(scenario, axis)}'
            f'{breaker_chart(scenario, axis)}</figure>')


def sample_chart(lines: list[tuple[str, str, list[tuple[float, float | None]]]], axis: TimeAxis, unit: str,
                 label: str, faults: list[dict[str, Any]] | None = None,
                 marks: list[tuple[float, str]] | None = None) -> str:
    """Values sampled over time, one line per (colour, name, [(t, value)]); a None value breaks its line
    (a restarted process starts a new one). Fault windows are shaded, and each mark (t, title) is a
    dashed vertical line, as a soak shows its kills."""
    values = [v for _, _, points in lines for _, v in points if v is not None]
    ticks = nice_ticks(max(values, default=1.0), max_steps=5)
    scale_max = ticks[-1]
    legend = [(colour, name, "line") for colour, name, _ in lines] + [(COLOURS["fault"], "fault window", "box")]
    body = [_legend(legend), fault_shades({"faults": faults or []}, axis, TOP, PLOT_HEIGHT),
            _value_axis(TOP, PLOT_HEIGHT, ticks, scale_max, unit),
            _time_axis_marks(axis, TOP, PLOT_HEIGHT, title=False)]
    for t, title in marks or []:
        x = axis.x(t)
        body.append(f'<line class="mark" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + PLOT_HEIGHT}" '
                    f'stroke="{COLOURS["rate_503"]}" stroke-dasharray="3,3"><title>{escape(title)}</title></line>')
    for colour, name, points in lines:
        segments: list[list[str]] = [[]]
        for t, value in points:
            if value is None:
                segments.append([])
                continue
            y = TOP + PLOT_HEIGHT - PLOT_HEIGHT * min(value, scale_max) / scale_max
            segments[-1].append(f"{axis.x(t):.1f},{y:.1f}")
        body += [f'<polyline class="series" points="{" ".join(s)}" fill="none" stroke="{colour}" stroke-width="2" '
                 f'stroke-linejoin="round"><title>{escape(name)}</title></polyline>' for s in segments if s]
    return _svg(TOP + PLOT_HEIGHT + BOTTOM - 14, label, "".join(body))
