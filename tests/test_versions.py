"""One Ray version for client, images and clusters; every dependency pinned."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.versions import RAY_VERSION

ROOT = Path(__file__).resolve().parent.parent


def requirement_lines(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#") and not line.startswith("-r")]


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt"])
def test_every_dependency_is_pinned(name):
    for line in requirement_lines(name):
        assert re.match(r"^[A-Za-z0-9_.\-\[\],]+==[0-9][^\s]*$", line), f"{name}: {line!r} is not pinned with =="


def test_requirements_pin_the_ray_version_the_images_use():
    ray = next(line for line in requirement_lines("requirements.txt") if line.startswith("ray["))
    assert ray.endswith(f"=={RAY_VERSION}")


def test_required_packages_are_listed():
    names = {re.split(r"[\[=]", line)[0] for line in requirement_lines("requirements.txt")}
    assert {"pulumi", "pulumi-gcp", "pulumi-kubernetes", "pulumi-docker", "pulumi-snowflake", "ray", "pyyaml",
            "pydantic"} <= names


@pytest.mark.parametrize("image", ["ray-cpu", "ray-cuda", "ray-rocm", "jupyter"])
def test_each_image_defaults_to_the_pinned_ray_version(image):
    dockerfile = (ROOT / "images" / image / "Dockerfile").read_text()
    assert f"ARG RAY_VERSION={RAY_VERSION}" in dockerfile
    assert re.search(r'ray\[[a-z,]+\]==\$\{RAY_VERSION\}', dockerfile), "Ray is installed at the pinned version"
