"""The generated Prometheus and Grafana configuration: promtool accepts it, and it watches Ray."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from components.monitoring_config import (
    RAY_SD_FILE,
    grafana_dashboards,
    grafana_datasources,
    prometheus_config,
)

PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None and not __import__("os").environ.get("CI"),
                    reason="promtool missing (Debian package prometheus; .ci/run installs it)")
def test_promtool_accepts_the_prometheus_config(tmp_path):
    sd = tmp_path / "sd.json"
    # The shape Ray writes on the head (one entry per node's metrics endpoint).
    sd.write_text(json.dumps([{"labels": {"job": "ray"}, "targets": ["172.18.0.2:8080", "172.18.0.3:8080"]}]))
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_config(sd_file=str(sd)))
    assert PROMTOOL, "promtool is required in CI"
    result = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.skipif(PROMTOOL is None and not __import__("os").environ.get("CI"), reason="promtool missing")
def test_promtool_rejects_a_broken_config(tmp_path):
    """The check above can fail: promtool does reject what Prometheus would."""
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_config(scrape_interval="ten seconds"))
    assert PROMTOOL, "promtool is required in CI"
    result = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_prometheus_discovers_ray_nodes_from_the_heads_file():
    config = yaml.safe_load(prometheus_config())
    ray_job = next(job for job in config["scrape_configs"] if job["job_name"] == "ray")
    assert ray_job["file_sd_configs"] == [{"files": [RAY_SD_FILE]}]


def test_grafana_provisioning_points_at_prometheus_and_rays_dashboards():
    source = yaml.safe_load(grafana_datasources("http://prometheus:9090"))["datasources"][0]
    assert (source["type"], source["url"], source["isDefault"]) == ("prometheus", "http://prometheus:9090", True)
    provider = yaml.safe_load(grafana_dashboards())["providers"][0]
    assert provider["options"]["path"] == "/tmp/ray/session_latest/metrics/grafana/dashboards"
