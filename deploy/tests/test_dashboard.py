"""The Grafana dashboard in deploy/grafana shows only metrics the services report."""

from __future__ import annotations

import json
import re
from pathlib import Path

from stafett_runtime import metrics

DASHBOARD = Path(__file__).resolve().parents[1] / "grafana" / "stafett.json"
# The Prometheus names of the metrics `stafett_runtime.metrics` defines (its table), with the
# suffixes a histogram and a counter get.
REPORTED = {
    "http_server_request_duration_seconds_bucket",
    "http_server_request_duration_seconds_count",
    "http_server_request_duration_seconds_sum",
    "stafett_commands_total",
    "stafett_events_appended_total",
    "stafett_events_processed_total",
    "stafett_processing_lag",
    "stafett_processing_parked",
    "stafett_notifications_total",
    "stafett_projection_applied_total",
    "stafett_projection_lag",
    "stafett_nats_reconnects_total",
    "stafett_archive_deliveries_total",
    "stafett_erasures_total",
}
METRIC = re.compile(r"\b(?:stafett|http_server)_[a-z_]+\b")


def test_every_query_of_the_dashboard_names_a_metric_the_services_report() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    named = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in METRIC.findall(target["expr"])
    }

    assert named == REPORTED - {"http_server_request_duration_seconds_sum"}


def test_the_metrics_module_documents_each_metric_the_dashboard_uses() -> None:
    documented = metrics.__doc__ or ""
    for name in REPORTED:
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        assert f"`{base}`" in documented, base
