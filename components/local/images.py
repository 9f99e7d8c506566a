"""Container images on one Docker host: built from images/ by the program, or pulled."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.versions import RAY_VERSION

IMAGE_DIRS = {"ray_cpu": "ray-cpu", "ray_cuda": "ray-cuda", "ray_rocm": "ray-rocm", "jupyter": "jupyter"}


@dataclass(frozen=True)
class DockerImagesArgs:
    kinds: list[str]  # which of IMAGE_DIRS this host needs
    source: str = "build"  # "build" | "pull"
    pull_refs: dict[str, str] = field(default_factory=dict)  # kind -> reference, for "pull"
    images_dir: str = "images"  # build contexts, relative to the project root

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - IMAGE_DIRS.keys()
        if unknown:
            raise ValueError(f"unknown image kinds {sorted(unknown)} (allowed: {', '.join(IMAGE_DIRS)})")
        if self.source not in ("build", "pull"):
            raise ValueError(f"source {self.source!r} (allowed: build, pull)")
        if self.source == "pull" and set(self.kinds) - self.pull_refs.keys():
            raise ValueError(f"no pull reference for {sorted(set(self.kinds) - self.pull_refs.keys())}")


class DockerImages(pulumi.ComponentResource):
    """`refs[kind]` is what a container on the same host runs."""

    refs: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: DockerImagesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:local:DockerImages", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.refs = {}
        for kind in sorted(set(args.kinds)):
            if args.source == "build":
                image = docker.Image(
                    f"{name}-{IMAGE_DIRS[kind]}",
                    image_name=f"ray-platform/{IMAGE_DIRS[kind]}:{RAY_VERSION}",
                    build=docker.DockerBuildArgs(
                        context=f"{args.images_dir}/{IMAGE_DIRS[kind]}",
                        args={"RAY_VERSION": RAY_VERSION},
                    ),
                    skip_push=True,
                    opts=child,
                )
                self.refs[kind] = image.image_name
            else:
                image = docker.RemoteImage(
                    f"{name}-{IMAGE_DIRS[kind]}", name=args.pull_refs[kind], keep_locally=True, opts=child
                )
                self.refs[kind] = image.image_id
        self.register_outputs({"refs": self.refs})
