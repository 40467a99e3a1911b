"""Metric labels: route templates, never raw paths (the endpoint itself is checked on a real
2-worker server in test_multiworker_server.py, where /metrics aggregates both workers)."""

from __future__ import annotations


def test_route_templates_bound_the_labels() -> None:
    from serving.http_routes import app as http_app
    from serving.metrics import UNMATCHED, RouteTemplates

    templates = RouteTemplates.from_app(["/recommend"], http_app)
    assert templates("/recommend") == "/recommend"
    assert templates("/users/bob/export") == "/users/{user}/export"
    assert templates("/content/movie:1.llm.md") == "/content/{content_id}.llm.md"
    assert templates("/content/movie:1/availability") == "/content/{content_id}/availability"
    assert templates("/status") == "/status"
    assert templates("/wp-admin/x.php") == UNMATCHED


def test_grafana_dashboard_charts_exported_metrics() -> None:
    import json
    import re
    from pathlib import Path

    from serving.metrics import serving_metrics

    dashboard = json.loads(
        (Path(__file__).resolve().parents[2] / "configs/deploy/grafana-dashboard.json").read_text()
    )
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"media_gateway_[a-z_]+", e)}
    names = {metric._name for metric in vars(serving_metrics()).values()}
    for name in used:
        base = re.sub(r"_(bucket|count|sum|total)$", "", name)
        assert base in names, f"{name} is not exported by serving/metrics.py"
