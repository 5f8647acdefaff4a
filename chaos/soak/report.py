"""The soak's results as `soak.json` and as `soak.html`: the verdict, the generation accounting, the
kills, the growth of every process lifetime, and charts of memory (PSS), open fds and connections over time
with the fault windows shaded and the kills marked."""

from __future__ import annotations

import dataclasses
import json
from html import escape
from pathlib import Path
from typing import Any

from chaos.report.charts import COLOURS, TimeAxis, sample_chart
from chaos.soak.growth import MB, amount
from chaos.soak.runner import SoakResult

SCHEMA_VERSION = 2  # 2: the service and its profile, four-way check verdicts, generations read through the API
COMPONENT_COLOURS = {"service": COLOURS["p50"], "postgres": COLOURS["p95"], "fal-emulator": COLOURS["p99"],
                     "storage-emulator": COLOURS["success"], "toxiproxy": COLOURS["open"]}
CHARTS = (("memory_bytes", "memory (PSS: shared pages split between the processes sharing them)", "{:.3g} MB", 1 / MB), ("open_fds", "open file descriptors", "{:g}", 1),
          ("connections", "open TCP connections", "{:g}", 1))


def kill_counts(result: SoakResult) -> dict[str, int]:
    counts = {"total": len(result.kills), "service": 0, "postgres": 0, "not_back": 0}
    for k in result.kills:
        counts[k.target] += 1
        counts["not_back"] += k.error is not None
    return counts


def to_json(result: SoakResult) -> dict[str, Any]:
    ledger = dataclasses.asdict(result.ledger)
    options = result.options
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": result.verdict,
        "options": {"duration_s": options.duration_s, "kill_every_s": options.kill_every_s,
                    "calm_s": options.calm_s, "users": options.users, "seed": options.seed,
                    "service": result.service, "profile": result.profile, "timing": "fast",
                    "sample_interval_s": options.sample_interval_s},
        "growth_bounds": {**dataclasses.asdict(options.bounds), "description": options.bounds.describe()},
        "started_at": result.started_at,
        "drain_s": result.drain_s,
        "counts": {k: v for k, v in ledger.items() if k not in ("examples", "objects_unmeasured")},
        "examples": ledger["examples"],
        "kills": {**kill_counts(result), "events": [dataclasses.asdict(k) for k in result.kills]},
        "faults": [{"start": round(w.start, 3), "end": round(w.end, 3), "description": w.description,
                    "dependency": w.dependency} for w in result.faults],
        "checks": [dataclasses.asdict(c) for c in result.checks],
        "growth": [dataclasses.asdict(g) for g in result.growth],
        "resources": [dataclasses.asdict(s) for s in result.samples],
    }


def _lines(document: dict[str, Any], metric: str, scale: float) -> list[tuple[str, str, list]]:
    """One line per component; a restart (new pid) breaks it."""
    lines = []
    for component, colour in COMPONENT_COLOURS.items():
        points: list[tuple[float, float | None]] = []
        pid = None
        for sample in (s for s in document["resources"] if s["component"] == component):
            if pid is not None and sample["pid"] != pid:
                points.append((sample["t"], None))
            pid = sample["pid"]
            points.append((sample["t"], sample[metric] * scale))
        if points:
            lines.append((colour, component, points))
    return lines


def charts(document: dict[str, Any]) -> str:
    span = max([1.0, document["options"]["duration_s"], *(s["t"] for s in document["resources"])])
    axis = TimeAxis(span)
    marks = [(k["t"], f"kill -9 {k['target']} at {k['t']:.0f} s") for k in document["kills"]["events"]]
    figures = [sample_chart(_lines(document, metric, scale), axis, unit, f"{title} per process",
                            document["faults"], marks) for metric, title, unit, scale in CHARTS]
    return "".join(f"<h3>{escape(title)}</h3>{svg}" for (_, title, _, _), svg in zip(CHARTS, figures, strict=True))


def _row(cells: list[Any], header: bool = False) -> str:
    tag = "th" if header else "td"
    return "<tr>" + "".join(f"<{tag}>{escape(str(c))}</{tag}>" for c in cells) + "</tr>"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    return f"<table>{_row(header, header=True)}{''.join(_row(r) for r in rows)}</table>"


def html(document: dict[str, Any]) -> str:
    verdict = document["verdict"]
    colour = COLOURS["success"] if verdict == "held" else COLOURS["rate_503"]
    counts, kills = document["counts"], document["kills"]
    checks = _table(["check", "verdict", "expected", "observed"],
                    [[c["name"], c["verdict"], c["expected"], c["observed"]] for c in document["checks"]])
    ledger = _table(["accepted", "completed", "failed", "lost", "submitted twice", "resubmitted after a kill "
                     "mid-submit", "stored objects", "orphaned objects", "completed without object",
                     "taken on without a 202"],
                    [[counts["accepted"], counts["completed"], counts["failed"], counts["lost"],
                      counts["submitted_twice"], counts["resubmitted_after_kill_mid_submit"], counts["stored_objects"],
                      counts["orphaned_objects"], counts["missing_objects"], counts["unacknowledged"]]])
    kill_table = _table(["t (s)", "target", "pid", "back after (s)", "error"],
                        [[k["t"], k["target"], k["pid"], k["back_after_s"], k["error"] or ""] for k in kills["events"]])
    growth = _table(["component", "pid", "metric", "samples", "second fifth", "last fifth", "limit", "held"],
                    [[g["component"], g["pid"], g["metric"], g["samples"], amount(g["metric"], g["baseline"]),
                      amount(g["metric"], g["final"]), amount(g["metric"], g["limit"]),
                      {True: "yes", False: "NO", None: "too short"}[g["held"]]] for g in document["growth"]])
    options = document["options"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>genchaos soak: {escape(verdict)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#333}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left}}.verdict{{color:{colour}}}</style></head>
<body><h1>genchaos soak: <span class="verdict">{escape(verdict)}</span></h1>
<p>{options['duration_s']:g} s of Locust load ({options['users']} users) on {escape(options['service'])}, its
{escape(options['profile'])} profile with fast timing, seed {options['seed']}; {kills['total']} kills
({kills['service']} service, {kills['postgres']} PostgreSQL), one about
every {options['kill_every_s']:g} s until the last {options['calm_s']:g} s; {len(document['faults'])} faults of the ci scenarios in rotation; queue drained in
{document['drain_s']:g} s.</p>
<h2>Checks</h2>{checks}
<h2>Generations</h2>{ledger}
<h2>Resources</h2><p>Time since the soak started (s); fault windows shaded, kills dashed. Bounds:
{escape(document['growth_bounds']['description'])}.</p>{charts(document)}
<h2>Growth per process lifetime</h2>{growth}
<h2>Kills</h2>{kill_table}
</body></html>
"""


def write(result: SoakResult, out: Path) -> tuple[Path, Path]:
    document = to_json(result)
    json_path, html_path = out / "soak.json", out / "soak.html"
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    html_path.write_text(html(document))
    return json_path, html_path
