"""Grafana dashboards and provisioning: the JSON loads as Grafana expects, every query is PromQL
that Prometheus parses and selects only metrics that exist, and provisioning points at real files."""

from __future__ import annotations

import pytest
import yaml

from tests.dashboards.promtools import (
    DASHBOARDS,
    REPO,
    bind_mounts,
    grafana_to_promql,
    instant_query,
    known_metric_names,
    load_dashboards,
    metric_names,
    panel_queries,
)

PROVISIONING = DASHBOARDS / "grafana" / "provisioning"
DASHBOARD_FILES = load_dashboards()


def prometheus_annotations(dashboard: dict) -> list[dict]:
    return [a for a in dashboard["annotations"]["list"] if a.get("datasource", {}).get("type") == "prometheus"]


def all_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel or annotation title, expr) for every Prometheus query."""
    queries = []
    for name, dashboard in DASHBOARD_FILES.items():
        queries += [(name, panel["title"], expr) for panel, expr in panel_queries(dashboard)]
        queries += [(name, f"annotation {a['name']}", a["expr"]) for a in prometheus_annotations(dashboard)]
    return queries


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_the_three_dashboards_exist_with_unique_uids():
    assert set(DASHBOARD_FILES) == {"slo-overview.json", "resilience.json", "dependencies.json"}
    uids = [dashboard["uid"] for dashboard in DASHBOARD_FILES.values()]
    assert all(uids) and len(set(uids)) == len(uids)


@pytest.mark.parametrize("name", sorted(DASHBOARD_FILES))
def test_dashboard_is_current_and_uses_the_datasource_variable(name):
    dashboard = DASHBOARD_FILES[name]
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel, _expr in panel_queries(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARD_FILES))
def test_panel_ids_are_unique(name):
    ids = [panel["id"] for panel in DASHBOARD_FILES[name]["panels"]]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {name}: {sorted(ids)}"


@pytest.mark.parametrize("name", sorted(DASHBOARD_FILES))
def test_every_panel_has_a_query(name):
    for panel in DASHBOARD_FILES[name]["panels"]:
        exprs = [target.get("expr") for target in panel["targets"]]
        assert exprs and all(exprs), f"{panel['title']} has a target without a query"


def test_fault_windows_are_annotated_on_every_dashboard():
    for name, dashboard in DASHBOARD_FILES.items():
        exprs = [a["expr"] for a in prometheus_annotations(dashboard)]
        assert any("genchaos_fault_active" in expr for expr in exprs), name
        tag_annotations = [a for a in dashboard["annotations"]["list"] if a.get("target", {}).get("type") == "tags"]
        assert any("fault" in a["target"]["tags"] for a in tag_annotations), name


@pytest.mark.parametrize("where,title,expr", all_queries(), ids=lambda v: v if isinstance(v, str) and len(v) < 60 else None)
def test_query_parses_in_prometheus(prometheus_parser, where, title, expr):
    response = instant_query(prometheus_parser, grafana_to_promql(expr))
    assert response.status_code == 200, f"{where} / {title}: {response.json().get('error')}"


def test_prometheus_rejects_a_broken_query(prometheus_parser):
    """The parse check above can fail: a query with an unclosed parenthesis is refused."""
    response = instant_query(prometheus_parser, "sum(rate(genchaos_http_requests_total[5m])")
    assert response.status_code == 400
    assert response.json()["errorType"] == "bad_data"


@pytest.mark.parametrize("where,title,expr", all_queries(), ids=lambda v: v if isinstance(v, str) and len(v) < 60 else None)
def test_query_selects_only_known_metrics(where, title, expr):
    selected = metric_names(expr)
    assert selected, f"{where} / {title}: no metric found in {expr!r}"
    unknown = selected - known_metric_names()
    assert not unknown, f"{where} / {title} selects metrics that nothing exposes: {unknown}"


def test_metric_check_notices_a_renamed_metric():
    known = known_metric_names()
    assert metric_names('sum by (status) (rate(genchaos_http_request_total{route="/x"}[5m]))') - known == \
        {"genchaos_http_request_total"}
    assert metric_names("histogram_quantile(0.95, sum by (le) (rate(genchaos_upstream_duration_seconds_bucket[$__rate_interval])))") \
        <= known


def test_datasource_provisioning_points_at_the_compose_prometheus():
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    (prometheus,) = datasources
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    assert "prometheus" in compose()["services"]


def test_dashboard_provider_path_is_mounted_from_the_dashboards_directory():
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "genchaos.yml").read_text())["providers"][0]
    assert provider["type"] == "file"
    mounts = bind_mounts(compose()["services"]["grafana"])
    source = REPO / mounts[provider["options"]["path"]]
    assert sorted(p.name for p in source.glob("*.json")) == sorted(DASHBOARD_FILES)
    assert (REPO / mounts["/etc/grafana/provisioning"]).resolve() == PROVISIONING.resolve()
