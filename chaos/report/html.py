"""report.html: a self-contained page (no network) with verdicts, checks, claims, and per scenario an
inline SVG chart of success rate and 503 rate over time with the fault windows shaded."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

WIDTH, HEIGHT, PAD = 560, 160, 30
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
.pass{color:#17702f;font-weight:600}.fail{color:#b3261e;font-weight:600}
.fault{fill:#f4b400;opacity:.25}.success{stroke:#17702f}.r503{stroke:#b3261e}
svg polyline{fill:none;stroke-width:2}.legend{font-size:.85rem}
"""


def _verdict(passed: bool, yes: str = "pass", no: str = "fail") -> str:
    return f'<span class="{"pass" if passed else "fail"}">{yes if passed else no}</span>'


def _points(series: list[dict[str, Any]], key: str, span: float) -> str:
    points = []
    for point in series:
        value = point.get(key)
        if value is None:
            continue
        x = PAD + (WIDTH - 2 * PAD) * point["t"] / span
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * value
        points.append(f"{x:.1f},{y:.1f}")
    return " ".join(points)


def chart(scenario: dict[str, Any]) -> str:
    """Success rate (green) and 503 rate (red) per second, 0..1, fault windows shaded."""
    series = scenario.get("timeline") or []
    if not series:
        return "<p>No timeline recorded.</p>"
    span = max(max(p["t"] for p in series), max((f["end"] for f in scenario.get("faults", [])), default=0), 1.0)
    inner = WIDTH - 2 * PAD
    shades = "".join(
        f'<rect class="fault" x="{PAD + inner * f["start"] / span:.1f}" y="{PAD}" '
        f'width="{max(1.0, inner * (f["end"] - f["start"]) / span):.1f}" height="{HEIGHT - 2 * PAD}">'
        f'<title>{escape(f["description"])}</title></rect>' for f in scenario.get("faults", []))
    axes = (f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
            f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
            f'<text x="2" y="{PAD + 4}" font-size="10">1.0</text><text x="2" y="{HEIGHT - PAD}" font-size="10">0</text>'
            f'<text x="{WIDTH - PAD - 30}" y="{HEIGHT - 8}" font-size="10">{span:.0f} s</text>')
    lines = (f'<polyline class="success" points="{_points(series, "success_rate", span)}"/>'
             f'<polyline class="r503" points="{_points(series, "rate_503", span)}"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'aria-label="success and 503 rate of {escape(scenario["name"])}">{shades}{axes}{lines}</svg>')


def _summary_rows(report: dict[str, Any]) -> str:
    rows = []
    for s in report["scenarios"]:
        m = s["metrics"]
        rows.append(
            f"<tr><td>{escape(s['name'])}</td><td>{escape(s['profile'])}</td><td>{_verdict(s['verdict'] == 'pass')}</td>"
            f"<td>{m.get('requests')}</td><td>{_pct(m.get('success_rate'))}</td><td>{_pct(m.get('rate_503'))}</td>"
            f"<td>{m.get('breaker_opened')}</td><td>{_num(m.get('recovery_s'))}</td>"
            f"<td>{_num(m.get('upstream_attempts_per_generation'))}</td><td>{m.get('lost_generations')}</td></tr>")
    return "".join(rows)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _scenario_section(s: dict[str, Any]) -> str:
    checks = "".join(
        f"<tr><td>{escape(c['name'])}</td><td>{_verdict(c['passed'])}</td><td>{escape(str(c['expected']))}</td>"
        f"<td>{escape(str(c['observed']))}</td></tr>" for c in s["checks"])
    faults = ", ".join(f"{escape(f['description'])} ({f['start']:.1f}–{f['end']:.1f} s)" for f in s.get("faults", []))
    return (f"<section><h3>{escape(s['name'])} · {escape(s['profile'])} · {_verdict(s['verdict'] == 'pass')}</h3>"
            f"<p>Faults: {faults or 'none'}</p>{chart(s)}"
            f'<p class="legend"><span class="pass">— success rate</span> · <span class="fail">— 503 rate</span> · '
            f"shaded: fault windows</p>"
            f"<table><tr><th>check</th><th>result</th><th>expected</th><th>observed</th></tr>{checks}</table></section>")


def render_html(report: dict[str, Any]) -> str:
    claims = "".join(
        f"<tr><td>{escape(c['claim'])}</td><td>{escape(c['profile'])}</td>"
        f"<td>{_verdict(c['held'], 'held', 'not held' if c.get('measured', True) else 'not measured')}</td>"
        f"<td>{escape(c['evidence'])}</td></tr>" for c in report["claims"])
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>genchaos report</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>genchaos report: {_verdict(report['verdict'] == 'pass')}</h1>"
        f"<p>Gate: {escape(', '.join(report.get('gate', [])))}</p>"
        "<h2>Scenarios</h2><table><tr><th>scenario</th><th>profile</th><th>verdict</th><th>requests</th>"
        "<th>success</th><th>503s</th><th>breaker opened</th><th>recovery s</th><th>FAL attempts/gen</th>"
        f"<th>lost</th></tr>{_summary_rows(report)}</table>"
        "<h2>The report's claims</h2><table><tr><th>claim</th><th>profile</th><th>result</th><th>evidence</th></tr>"
        f"{claims}</table><h2>Details</h2>{''.join(_scenario_section(s) for s in report['scenarios'])}"
        "</body></html>\n")


def write_html(path: Path, report: dict[str, Any]) -> None:
    path.write_text(render_html(report))
