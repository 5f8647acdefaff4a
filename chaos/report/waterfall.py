"""A trace as an inline SVG waterfall: one bar per span on a shared millisecond axis, names indented by
depth, durations beside the bars, failed spans in red and events (retries, breaker decisions) marked."""

from __future__ import annotations

from html import escape
from typing import Any

from chaos.report.charts import COLOURS, nice_ticks

WIDTH = 1080
NAME_COLUMN = 330  # span names, indented by depth
DURATION_COLUMN = 90
ROW, TOP, INDENT = 20, 28, 12
BAR_COLOURS = {"ok": "#8ab4f8", "error": "#d93025"}
EVENT_COLOURS = {"retry": COLOURS["p99"], "breaker.rejected": COLOURS["open"],
                 "breaker.transition": COLOURS["half_open"], "retry_budget_exhausted": COLOURS["p95"]}
EVENT_COLOUR_OTHER = "#5f6368"


def _bar_x(ms: float, scale_ms: float) -> float:
    return NAME_COLUMN + (WIDTH - NAME_COLUMN - DURATION_COLUMN) * ms / scale_ms


def _event_mark(event: dict[str, Any], y: float, scale_ms: float) -> str:
    """A diamond at the event's time, titled with its attributes."""
    x = _bar_x(event["t_ms"], scale_ms)
    colour = EVENT_COLOURS.get(event["name"], EVENT_COLOUR_OTHER)
    details = ", ".join(f"{k}={v}" for k, v in event["attributes"].items())
    return (f'<path class="event {escape(event["name"])}" d="M{x:.1f},{y + 1} l6,8 l-6,8 l-6,-8 z" fill="{colour}" '
            f'stroke="#fff" stroke-width="1"><title>{escape(event["name"])} at {event["t_ms"]:.0f} ms'
            f'{": " + escape(details) if details else ""}</title></path>')


def _row(span: dict[str, Any], index: int, scale_ms: float) -> str:
    y = TOP + index * ROW
    x = _bar_x(span["start_ms"], scale_ms)
    width = max(1.5, _bar_x(span["start_ms"] + span["duration_ms"], scale_ms) - x)
    colour = BAR_COLOURS["error" if span["error"] else "ok"]
    details = ", ".join(f"{k}={v}" for k, v in span["attributes"].items())
    title = escape(f"{span['name']}: starts {span['start_ms']:.1f} ms, lasts {span['duration_ms']:.1f} ms"
                   + (f"; {details}" if details else ""))
    name = span["name"] + (f" #{span['attributes']['genchaos.attempt']}"
                           if "genchaos.attempt" in span["attributes"] else "")
    stripe = ' fill-opacity="0.35"' if index % 2 else ' fill-opacity="0"'
    return (f'<g class="span"><title>{title}</title>'
            f'<rect x="0" y="{y}" width="{WIDTH}" height="{ROW}" fill="#f1f3f4"{stripe}/>'
            f'<text x="{4 + INDENT * span["depth"]}" y="{y + 14}">{escape(name[:48])}</text>'
            f'<rect class="bar{" error" if span["error"] else ""}" x="{x:.1f}" y="{y + 4}" width="{width:.1f}" '
            f'height="{ROW - 8}" fill="{colour}" shape-rendering="crispEdges"/>'
            f'<text x="{WIDTH - 4}" y="{y + 14}" text-anchor="end">{span["duration_ms"]:.1f} ms</text>'
            f'{"".join(_event_mark(e, y, scale_ms) for e in span["events"])}</g>')


def waterfall_svg(spans: list[dict[str, Any]], label: str) -> str:
    """The waterfall of rows from ``exemplars.waterfall``."""
    if not spans:
        return "<p>No spans of this trace reached the traces file.</p>"
    end_ms = max(max(s["start_ms"] + s["duration_ms"] for s in spans),
                 max((e["t_ms"] for s in spans for e in s["events"]), default=0.0))
    ticks = nice_ticks(end_ms)
    scale_ms = ticks[-1]
    axis = "".join(
        f'<line x1="{_bar_x(t, scale_ms):.1f}" y1="{TOP - 4}" x2="{_bar_x(t, scale_ms):.1f}" '
        f'y2="{TOP + len(spans) * ROW}" stroke="{COLOURS["grid"]}"/>'
        f'<text x="{_bar_x(t, scale_ms):.1f}" y="{TOP - 8}" text-anchor="middle">{t:g} ms</text>'
        for t in ticks)
    header = f'<text x="4" y="{TOP - 8}" font-weight="600">span</text>'
    rows = "".join(_row(span, index, scale_ms) for index, span in enumerate(spans))
    height = TOP + len(spans) * ROW + 6
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="waterfall" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(label)}" '
            f'font-family="system-ui,sans-serif" font-size="11" fill="{COLOURS["text"]}">'
            f'{header}{axis}{rows}</svg>')


def exemplar_section(exemplar: dict[str, Any]) -> str:
    """An exemplar's heading, trace ids and waterfall."""
    linked = (f' · worker trace linked from request trace <code>{escape(exemplar["linked_trace_id"])}</code>'
              if exemplar.get("linked_trace_id") else "")
    cut = " · only the first spans are shown" if exemplar.get("truncated") else ""
    legend = ('<p class="legend"><span class="swatch" style="background:#8ab4f8"></span>span '
              '<span class="swatch" style="background:#d93025"></span>failed span '
              f'<span class="swatch" style="background:{EVENT_COLOURS["retry"]}"></span>retry event '
              f'<span class="swatch" style="background:{EVENT_COLOURS["breaker.rejected"]}"></span>breaker rejection '
              f'<span class="swatch" style="background:{EVENT_COLOUR_OTHER}"></span>other event (e.g. exception) '
              '· hover a row for its attributes</p>')
    return (f'<div class="exemplar {escape(exemplar["kind"])}"><h4>{escape(exemplar["title"])}</h4>'
            f'<p class="meta">trace <code>{escape(exemplar["trace_id"])}</code>{linked}{cut}</p>{legend}'
            f'{waterfall_svg(exemplar["spans"], exemplar["title"])}</div>')
