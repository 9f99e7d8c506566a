"""Images for SPCS: built from images/ for linux/amd64 and pushed to the stack's image repository.

The tag carries a digest of the build context, so a changed Dockerfile gives a new tag, a changed spec and
a rolled service. Registry login uses the user and a token, both passed as secrets.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components.versions import RAY_VERSION

IMAGE_DIRS = ("spcs-ray", "spcs-ray-cuda", "spcs-raydp", "spcs-prometheus", "spcs-grafana")
# Images built from another image's folder with build arguments: RayDP's executors are Java Ray actors, so
# every node that may host one (GPU nodes too) needs Java and raydp: one RayDP image per accelerator kind.
VARIANTS = {"spcs-raydp-cuda": ("spcs-raydp", {"RAY_FLAVOR": "gpu"})}
IMAGE_NAMES = (*IMAGE_DIRS, *VARIANTS)
PLATFORM = "linux/amd64"  # the only platform SPCS runs
DIGEST_LENGTH = 12


def context_digest(directory: Path) -> str:
    """A digest of every file in a build context (names and contents)."""
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(path.relative_to(directory).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:DIGEST_LENGTH]


def context_dir(name: str) -> str:
    """The images/ folder an image is built from."""
    return VARIANTS[name][0] if name in VARIANTS else name


def ray_image_name(*, raydp: bool, gpu: bool) -> str:
    """The Ray image for a node: with RayDP every node carries Java and raydp, whatever its accelerator."""
    return {(False, False): "spcs-ray", (False, True): "spcs-ray-cuda", (True, False): "spcs-raydp",
            (True, True): "spcs-raydp-cuda"}[(raydp, gpu)]


def images_needed(*, raydp: bool, gpu: bool, monitoring: bool) -> list[str]:
    """The images a Ray-on-SPCS deployment runs (the spcs stack and the Native App alike)."""
    names = {ray_image_name(raydp=raydp, gpu=False)}
    if gpu:
        names.add(ray_image_name(raydp=raydp, gpu=True))
    if monitoring:
        names |= {"spcs-prometheus", "spcs-grafana"}
    return sorted(names)


def image_reference(database: str, schema: str, repository: str, name: str, tag: str) -> str:
    """An image as specs and manifest.yml name it: /db/schema/repo/name:tag (lower case)."""
    return f"/{database}/{schema}/{repository}/{name}:{tag}".lower()


def image_tag(directory: Path) -> str:
    return f"{RAY_VERSION}-{context_digest(directory)}"


@dataclass(frozen=True)
class SpcsImagesArgs:
    names: list[str]  # of IMAGE_NAMES
    repository_url: pulumi.Input[str]  # host/db/schema/repo
    registry_user: str
    registry_token: pulumi.Input[str] | None  # secret; None: push with an existing `docker login`
    docker_provider: docker.Provider
    root: Path  # the project root, where the program runs
    images_dir: str = "images"  # build contexts, relative to root (kept relative: previews stay machine-independent)

    def __post_init__(self) -> None:
        unknown = set(self.names) - set(IMAGE_NAMES)
        if unknown:
            raise ValueError(f"unknown images {sorted(unknown)} (allowed: {', '.join(IMAGE_NAMES)})")


class SpcsImages(pulumi.ComponentResource):
    """`refs[name]` is the pushed `host/db/schema/repo/name:tag`."""

    refs: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: SpcsImagesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:spcs:SpcsImages", name, None, opts)
        url = pulumi.Output.from_input(args.repository_url)
        registry = None
        if args.registry_token is not None:
            registry = docker.RegistryArgs(server=url.apply(lambda u: u.split("/")[0]), username=args.registry_user,
                                           password=pulumi.Output.secret(args.registry_token))
        self.refs = {}
        for image_name in sorted(set(args.names)):
            context = f"{args.images_dir}/{context_dir(image_name)}"
            tag = image_tag(args.root / context)
            build_args = {"RAY_VERSION": RAY_VERSION, **VARIANTS.get(image_name, ("", {}))[1]}
            image = docker.Image(
                f"{name}-{image_name}",
                image_name=url.apply(lambda u, n=image_name, t=tag: f"{u}/{n}:{t}"),
                build=docker.DockerBuildArgs(context=context, platform=PLATFORM, args=build_args),
                registry=registry,
                skip_push=False,
                opts=pulumi.ResourceOptions(parent=self, provider=args.docker_provider),
            )
            self.refs[image_name] = image.image_name
        self.register_outputs({"refs": self.refs})
