"""Helpers for the dashboards tests: a real Prometheus on a free port, and the metric names
that PromQL in rules and dashboards may use (so a renamed metric fails a test)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
RULES_DIR = DASHBOARDS / "prometheus" / "rules"
GRAFANA_DASHBOARDS = DASHBOARDS / "grafana" / "dashboards"
ARCHITECTURE = REPO / "docs" / "architecture.md"

# Toxiproxy's own metrics with -proxy-metrics (its METRICS.md).
TOXIPROXY_METRICS = {"toxiproxy_proxy_received_bytes_total", "toxiproxy_proxy_sent_bytes_total"}
# Exposed by the harness while a fault is applied (documented in dashboards/README.md).
HARNESS_METRICS = {"genchaos_fault_active"}
# Written by Prometheus itself for every target.
PROMETHEUS_METRICS = {"up"}

# What Grafana substitutes before a query reaches Prometheus, for a run of a few minutes.
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__interval": "5s", "$__range": "10m"}

_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NUMBERS = re.compile(r"(?<![\w:])\d[\w.]*")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring",
             "group_left", "group_right"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: identifiers that are not functions,
    aggregations, keywords, label names or literals."""
    expr = grafana_to_promql(expr)
    for pattern in (_STRINGS, _MATCHERS, _RANGES, _LABEL_LISTS, _NUMBERS):
        expr = pattern.sub(" ", expr)
    names = set()
    for match in _IDENTIFIER.finditer(expr):
        name = match.group()
        followed_by_call = expr[match.end():].lstrip().startswith("(")
        if name.lower() not in _KEYWORDS and not followed_by_call:
            names.add(name)
    return names


def service_metric_names() -> set[str]:
    """The service's metric names from docs/architecture.md's table, with histogram series."""
    names = set()
    row = re.compile(r"^\|\s*`(genchaos_[a-z0-9_]+)`\s*\|\s*([a-z]+)")
    for line in ARCHITECTURE.read_text().splitlines():
        match = row.match(line)
        if match:
            name, kind = match.groups()
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def rule_groups() -> list[dict]:
    """Every rule group of dashboards/prometheus/rules, with the file it came from."""
    groups = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            groups.append({**group, "file": path})
    return groups


def recorded_names() -> set[str]:
    """Names the recording rules create."""
    return {rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule}


def known_metric_names() -> set[str]:
    """Everything a rule or a panel may select."""
    return service_metric_names() | recorded_names() | TOXIPROXY_METRICS | HARNESS_METRICS | PROMETHEUS_METRICS


def load_dashboards() -> dict[str, dict]:
    """Every dashboard JSON file by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(GRAFANA_DASHBOARDS.glob("*.json"))}


def panel_queries(dashboard: dict) -> list[tuple[dict, str]]:
    """(panel, expr) for every Prometheus target of every panel, rows included."""
    panels = []
    for panel in dashboard.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return [(panel, target["expr"]) for panel in panels for target in panel.get("targets", []) if "expr" in target]


def grafana_to_promql(expr: str, variables: dict[str, str] = GRAFANA_VARIABLES) -> str:
    """The query Prometheus receives once Grafana has filled in its interval variables."""
    for variable, value in variables.items():
        expr = expr.replace(variable, value)
    return expr


def bind_mounts(compose_service: dict) -> dict[str, str]:
    """Container path -> host path of a docker-compose service's short-syntax volumes."""
    mounts = {}
    for volume in compose_service.get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts[target] = source
    return mounts


def instant_query(base_url: str, expr: str) -> httpx.Response:
    """GET /api/v1/query: 200 with data for a valid query, 400 with the parse error otherwise."""
    return httpx.get(f"{base_url}/api/v1/query", params={"query": expr}, timeout=10)
