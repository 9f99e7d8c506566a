"""Prometheus and Grafana configuration for a Ray cluster, as pure functions (checked with promtool)."""

from __future__ import annotations

import yaml

# Ray's head writes the addresses of every node's metrics endpoint here (file-based service discovery).
RAY_SD_FILE = "/tmp/ray/prom_metrics_service_discovery.json"
# ...and the Grafana dashboards for the running Ray version here.
RAY_DASHBOARDS_DIR = "/tmp/ray/session_latest/metrics/grafana/dashboards"


def prometheus_config(scrape_interval: str = "10s", sd_file: str = RAY_SD_FILE) -> str:
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {"job_name": "ray", "file_sd_configs": [{"files": [sd_file]}]},
            {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]},
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def grafana_datasources(prometheus_url: str) -> str:
    """Ray's dashboards expect a Prometheus data source; this one is the default."""
    config = {
        "apiVersion": 1,
        "datasources": [
            {"name": "Prometheus", "uid": "prometheus", "type": "prometheus", "access": "proxy",
             "url": prometheus_url, "isDefault": True, "editable": False},
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def grafana_dashboards(path: str = RAY_DASHBOARDS_DIR) -> str:
    """Provision the dashboards Ray generates at start, so they always match the running Ray version."""
    config = {
        "apiVersion": 1,
        "providers": [
            {"name": "ray", "folder": "Ray", "type": "file", "allowUiUpdates": False,
             "updateIntervalSeconds": 30, "options": {"path": path}},
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)
