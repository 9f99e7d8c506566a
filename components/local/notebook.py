"""A Jupyter server with the Ray client and no GPU, pointed at the cluster through RAY_ADDRESS."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.local.docker import env_list, published


@dataclass(frozen=True)
class NotebookArgs:
    container_prefix: str
    provider: docker.Provider
    network: docker.Network
    image: pulumi.Input[str]
    ray_address: str  # the dashboard / Jobs API URL as seen from the notebook container
    token: pulumi.Input[str]
    port: int = 8888
    bind_address: str = "127.0.0.1"
    env: dict[str, pulumi.Input[str]] = field(default_factory=dict)


class Notebook(pulumi.ComponentResource):
    container: docker.Container
    workspace: docker.Volume

    def __init__(self, name: str, args: NotebookArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:local:Notebook", name, None, opts)
        self.workspace = docker.Volume(
            f"{name}-work", name=f"{args.container_prefix}-jupyter-work",
            labels=[docker.VolumeLabelArgs(label="ray-platform.stateful", value="true")],
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, protect=True, retain_on_delete=True),
        )
        self.container = docker.Container(
            f"{name}-jupyter",
            name=f"{args.container_prefix}-jupyter",
            image=args.image,
            envs=env_list({**args.env, "RAY_ADDRESS": args.ray_address, "JUPYTER_TOKEN": args.token}),
            volumes=[docker.ContainerVolumeArgs(volume_name=self.workspace.name, container_path="/home/jovyan/work")],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network.name, aliases=["jupyter"])],
            ports=published({8888: args.port}, args.bind_address),
            restart="unless-stopped",
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.register_outputs({"container": self.container.name})
