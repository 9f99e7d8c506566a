"""Prometheus scraping Ray through the head's service discovery file, and Grafana with Ray's dashboards."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.local.docker import env_list, published
from components.monitoring_config import grafana_dashboards, grafana_datasources, prometheus_config

PROMETHEUS_IMAGE = "prom/prometheus:v3.7.3"
GRAFANA_IMAGE = "grafana/grafana-oss:12.2.1"


@dataclass(frozen=True)
class MonitoringArgs:
    container_prefix: str
    provider: docker.Provider
    network: docker.Network
    ray_tmp_volume: pulumi.Input[str]  # the head's /tmp/ray, mounted read-only
    grafana_admin_password: pulumi.Input[str]
    prometheus_port: int = 9090
    grafana_port: int = 3000
    bind_address: str = "127.0.0.1"


class Monitoring(pulumi.ComponentResource):
    prometheus: docker.Container
    grafana: docker.Container
    prometheus_internal_url = "http://prometheus:9090"
    grafana_internal_url = "http://grafana:3000"

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:local:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        ray_tmp = docker.ContainerVolumeArgs(volume_name=args.ray_tmp_volume, container_path="/tmp/ray", read_only=True)

        def network(alias: str) -> list[docker.ContainerNetworksAdvancedArgs]:
            return [docker.ContainerNetworksAdvancedArgs(name=args.network.name, aliases=[alias])]

        self.prometheus = docker.Container(
            f"{name}-prometheus",
            name=f"{args.container_prefix}-prometheus",
            image=PROMETHEUS_IMAGE,
            command=["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                     "--storage.tsdb.retention.time=15d"],
            uploads=[docker.ContainerUploadArgs(file="/etc/prometheus/prometheus.yml", content=prometheus_config())],
            volumes=[ray_tmp],
            networks_advanced=network("prometheus"),
            ports=published({9090: args.prometheus_port}, args.bind_address),
            restart="unless-stopped",
            opts=child,
        )
        self.grafana = docker.Container(
            f"{name}-grafana",
            name=f"{args.container_prefix}-grafana",
            image=GRAFANA_IMAGE,
            envs=env_list({
                "GF_SECURITY_ADMIN_USER": "admin",
                "GF_SECURITY_ADMIN_PASSWORD": args.grafana_admin_password,
                "GF_AUTH_ANONYMOUS_ENABLED": "false",
                # Ray's dashboard embeds Grafana panels in iframes.
                "GF_SECURITY_ALLOW_EMBEDDING": "true",
            }),
            uploads=[
                docker.ContainerUploadArgs(file="/etc/grafana/provisioning/datasources/ray.yaml",
                                           content=grafana_datasources(self.prometheus_internal_url)),
                docker.ContainerUploadArgs(file="/etc/grafana/provisioning/dashboards/ray.yaml",
                                           content=grafana_dashboards()),
            ],
            volumes=[ray_tmp],
            networks_advanced=network("grafana"),
            ports=published({3000: args.grafana_port}, args.bind_address),
            restart="unless-stopped",
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.prometheus]),
        )
        self.register_outputs({"prometheus": self.prometheus.name, "grafana": self.grafana.name})
