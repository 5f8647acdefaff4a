"""report.html: one self-contained page (inline CSS and SVG, no script, no network) for the people who
review a run: the verdict, a summary row per scenario x profile, the claims audit (claims x profiles),
and per scenario its checks (expected vs observed), what the service's own telemetry said beside what
happened, charts over time and exemplar trace waterfalls."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from chaos.report.charts import COLOURS, scenario_charts
from chaos.report.waterfall import exemplar_section

STYLE = f"""
body{{font-family:system-ui,sans-serif;margin:1.5rem 2rem;color:{COLOURS["text"]};max-width:1120px}}
h1{{margin-bottom:.25rem}} h2{{margin-top:2rem;border-bottom:2px solid #e0e0e0;padding-bottom:.25rem}}
h3{{margin:0 0 .5rem}} h4{{margin:1rem 0 .25rem}}
table{{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}}
td,th{{border:1px solid #d0d0d0;padding:.3rem .55rem;text-align:left;vertical-align:top}}
th{{background:#f5f5f5}} td.num{{text-align:right;font-variant-numeric:tabular-nums}}
tr.failed td{{background:#fce8e6}}
.pass{{color:{COLOURS["success"]};font-weight:600}} .fail{{color:#b3261e;font-weight:600}}
.badge{{display:inline-block;padding:.1rem .5rem;border-radius:.75rem;font-weight:600;font-size:.85rem}}
.badge.pass{{background:#e6f4ea}} .badge.fail{{background:#fce8e6}}
.badge.unmeasured{{background:#eeeeee;color:#555}} .badge.inconclusive{{background:#fff4d6;color:#7a5400}}
td.claim{{min-width:260px}} td.cell{{width:38%}} .evidence{{font-size:.8rem;color:#555;margin-top:.25rem}}
section.scenario{{border:1px solid #e0e0e0;border-radius:6px;padding:1rem;margin:1.25rem 0}}
figure.charts{{margin:.5rem 0}} figcaption,.meta,.legend{{font-size:.8rem;color:#555}}
svg{{display:block;max-width:100%;height:auto;margin:.25rem 0}}
.swatch{{display:inline-block;width:.9rem;height:.7rem;margin:0 .25rem 0 .6rem;vertical-align:middle}}
nav a{{margin-right:.75rem}} code{{font-size:.8rem}} .error{{color:#b3261e}}
table.telemetry tr.disagrees td{{background:#fce8e6}}
table.telemetry tr.disagrees td:first-child{{border-left:4px solid #b3261e}}
table.telemetry tr.unmeasured td{{background:#f5f5f5;color:#777}}
"""


def badge(passed: bool, yes: str = "pass", no: str = "fail") -> str:
    return f'<span class="badge {"pass" if passed else "fail"}">{yes if passed else no}</span>'


STATUS_CLASSES = {"held": "pass", "not held": "fail", "inconclusive": "inconclusive", "not measured": "unmeasured",
                  "passed": "pass", "failed": "fail", "invalid": "fail"}


def claim_status(claim: dict[str, Any]) -> str:
    """held | not held | inconclusive | not measured, also for reports written before `status` existed."""
    if claim.get("status"):
        return claim["status"]
    if not claim.get("measured", True) or claim["held"] is None:
        return "not measured"
    return {True: "held", False: "not held"}.get(claim["held"], "inconclusive")


def status_badge(status: str) -> str:
    """A badge for held / not held / inconclusive / not measured, or a scenario's outcome."""
    return f'<span class="badge {STATUS_CLASSES.get(status, "unmeasured")}">{escape(status)}</span>'


def show(value: Any) -> str:
    """A check's expected or observed value, numbers to 4 significant digits."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def anchor(scenario: dict[str, Any]) -> str:
    return f"{scenario['name']}--{scenario['profile']}"


def summary_table(report: dict[str, Any]) -> str:
    rows = []
    for s in report["scenarios"]:
        m = s["metrics"]
        rows.append(
            f'<tr><td><a href="#{escape(anchor(s))}">{escape(s["name"])}</a></td><td>{escape(s["profile"])}</td>'
            f'<td>{status_badge(s.get("outcome", s["verdict"]))}</td><td class="num">{m.get("requests")}</td>'
            f'<td class="num">{_pct(m.get("success_rate"))}</td><td class="num">{_pct(m.get("rate_503"))}</td>'
            f'<td>{m.get("breaker_opened")}</td><td class="num">{_num(m.get("time_to_open_s"))}</td>'
            f'<td class="num">{_num(m.get("recovery_s"))}</td>'
            f'<td class="num">{_num(m.get("upstream_attempts_per_generation"))}</td>'
            f'<td class="num">{m.get("lost_generations")}</td></tr>')
    return ("<table><tr><th>scenario</th><th>profile</th><th>verdict</th><th>requests</th><th>success</th>"
            "<th>503s</th><th>breaker opened</th><th>time to open s</th><th>recovery s</th>"
            f"<th>FAL attempts/gen</th><th>lost</th></tr>{''.join(rows)}</table>")


def _claim_cell(claim: dict[str, Any] | None) -> str:
    if claim is None:
        return '<td class="cell"><span class="badge unmeasured">not run</span></td>'
    status = status_badge(claim_status(claim))
    return (f'<td class="cell" title="{escape(claim["evidence"])}">{status}'
            f'<div class="evidence">{escape(claim["evidence"])}</div></td>')


def claims_table(claims: list[dict[str, Any]]) -> str:
    """One row per claim, one column per profile: held, not held, inconclusive or not measured, with the
    evidence."""
    if not claims:
        return "<p>No claim was audited.</p>"
    profiles = list(dict.fromkeys(c["profile"] for c in claims))
    by_key = {(c["claim"], c["profile"]): c for c in claims}
    rows = "".join(
        f'<tr><td class="claim">{escape(text)}</td>'
        f'{"".join(_claim_cell(by_key.get((text, p))) for p in profiles)}</tr>'
        for text in dict.fromkeys(c["claim"] for c in claims))
    header = "".join(f"<th>{escape(p)} profile</th>" for p in profiles)
    return f'<table class="claims"><tr><th>claim</th>{header}</tr>{rows}</table>'


def checks_table(checks: list[dict[str, Any]]) -> str:
    rows = "".join(
        f'<tr class="{"passed" if c["passed"] else "failed"}"><td>{escape(c["name"])}</td>'
        f'<td>{status_badge(c.get("status") or ("held" if c["passed"] else "not held"))}</td>'
        f'<td>{escape(show(c["expected"]))}</td>'
        f'<td>{escape(show(c["observed"]))}</td></tr>' for c in checks)
    return ("<table class=\"checks\"><tr><th>check</th><th>result</th><th>expected</th><th>observed</th></tr>"
            f"{rows}</table>")


TELEMETRY_ROW_CLASSES = {"not held": "disagrees", "unmeasured": "unmeasured"}


def telemetry_table(rows: list[dict[str, Any]]) -> str:
    """What the service said about itself beside what the harness saw, so a service whose own telemetry
    disagrees with what happened stands out; nothing when nothing was compared."""
    if not rows:
        return ""
    body = "".join(
        f'<tr class="{TELEMETRY_ROW_CLASSES.get(r["status"], "")}"><td>{escape(r["aspect"])}</td>'
        f'<td>{escape(r["service_said"])}</td><td>{escape(r["happened"])}</td><td>{escape(r["tolerance"])}</td>'
        f'<td>{status_badge(r["status"])}</td></tr>' for r in rows)
    return ('<h4>What the service said, and what happened</h4><table class="telemetry"><tr><th>aspect</th>'
            "<th>the service said</th><th>what happened</th><th>tolerance</th><th>result</th></tr>"
            f"{body}</table>")


def scenario_section(s: dict[str, Any]) -> str:
    faults = ", ".join(f"{escape(f['description'])} ({f['start']:.1f}–{f['end']:.1f} s)" for f in s.get("faults") or [])
    settings = ", ".join(f"{escape(k)}={escape(str(v))}" for k, v in (s.get("settings") or {}).items())
    error = f'<p class="error">The scenario did not run to the end: {escape(s["error"])}</p>' if s.get("error") else ""
    exemplars = s.get("exemplars") or []
    traces = ("<h4>Exemplar traces</h4>" + "".join(exemplar_section(e) for e in exemplars)) if exemplars else ""
    return (f'<section class="scenario" id="{escape(anchor(s))}">'
            f'<h3>{escape(s["name"])} · {escape(s["profile"])} profile · {status_badge(s.get("outcome", s["verdict"]))}</h3>'
            f'<p class="meta">timing {escape(str(s.get("timing")))}{" · settings " + settings if settings else ""}'
            f'<br>faults: {faults or "none"}</p>{error}{checks_table(s["checks"])}'
            f'{telemetry_table(s.get("telemetry") or [])}{scenario_charts(s)}{traces}</section>')


def render_html(report: dict[str, Any]) -> str:
    scenarios = report["scenarios"]
    passed = sum(s["verdict"] == "pass" for s in scenarios)
    nav = "".join(f'<a href="#{escape(anchor(s))}">{escape(s["name"])} · {escape(s["profile"])}</a>'
                  for s in scenarios)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>genchaos report</title>'
        f"<style>{STYLE}</style></head><body>"
        f"<h1>genchaos report {badge(report['verdict'] == 'pass')}</h1>"
        f"<p class=\"meta\">gated on: {escape(', '.join(report.get('gate', [])) or 'nothing')} · "
        f"{passed} of {len(scenarios)} scenario runs passed</p><nav>{nav}</nav>"
        f"<h2>Scenarios</h2>{summary_table(report)}"
        f"<h2>The report's claims, profile against profile</h2>{claims_table(report['claims'])}"
        f"<h2>Details</h2>{''.join(scenario_section(s) for s in scenarios)}"
        "</body></html>\n")


def write_html(path: Path, report: dict[str, Any]) -> None:
    path.write_text(render_html(report), encoding="utf-8")
