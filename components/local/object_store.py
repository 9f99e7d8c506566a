"""MinIO for checkpoints: its data on a protected volume, and the bucket created by a one-shot `mc` run."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.local.docker import env_list, published

MINIO_IMAGE = "minio/minio:RELEASE.2025-09-07T16-13-09Z"
MC_IMAGE = "minio/mc:RELEASE.2025-08-13T08-35-41Z"


@dataclass(frozen=True)
class ObjectStoreArgs:
    container_prefix: str
    provider: docker.Provider
    network: docker.Network
    bucket: str
    root_user: str
    root_password: pulumi.Input[str]
    api_port: int = 9000
    console_port: int = 9001
    bind_address: str = "127.0.0.1"


class ObjectStore(pulumi.ComponentResource):
    internal_endpoint = "http://minio:9000"  # as seen from containers on the same network
    data: docker.Volume
    server: docker.Container
    bucket: docker.Container

    def __init__(self, name: str, args: ObjectStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:local:ObjectStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        # Checkpoints outlive the cluster: `pulumi destroy` must not take them.
        self.data = docker.Volume(
            f"{name}-data", name=f"{args.container_prefix}-minio-data",
            labels=[docker.VolumeLabelArgs(label="ray-platform.stateful", value="true")],
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, protect=True, retain_on_delete=True),
        )
        credentials = {"MINIO_ROOT_USER": args.root_user, "MINIO_ROOT_PASSWORD": args.root_password}
        self.server = docker.Container(
            f"{name}-minio",
            name=f"{args.container_prefix}-minio",
            image=MINIO_IMAGE,
            command=["server", "/data", "--console-address", ":9001"],
            envs=env_list(credentials),
            volumes=[docker.ContainerVolumeArgs(volume_name=self.data.name, container_path="/data")],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network.name, aliases=["minio"])],
            ports=published({9000: args.api_port, 9001: args.console_port}, args.bind_address),
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "mc", "ready", "local"], interval="10s", timeout="5s", retries=5, start_period="10s"),
            restart="unless-stopped",
            opts=child,
        )
        # One-shot: waits for MinIO, creates the bucket if it is missing, exits 0.
        script = (
            f'until mc alias set store {self.internal_endpoint} "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"; '
            f"do sleep 1; done && mc mb --ignore-existing store/{args.bucket}"
        )
        self.bucket = docker.Container(
            f"{name}-bucket",
            name=f"{args.container_prefix}-minio-bucket",
            image=MC_IMAGE,
            entrypoints=["/bin/sh", "-c"],
            command=[script],
            envs=env_list(credentials),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network.name)],
            must_run=False,
            attach=True,  # the deployment waits until the bucket exists
            restart="no",
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.server]),
        )
        self.register_outputs({"bucket": args.bucket, "endpoint": self.internal_endpoint})
