"""Components on their own, under recording mocks: each does its job without a stack around it."""

from __future__ import annotations

import re

import pulumi
import pulumi_docker as docker
import pytest

from components.local.images import DockerImages, DockerImagesArgs
from components.local.ray_cluster import (
    DockerPlacement,
    DockerRayCluster,
    DockerRayClusterArgs,
    HeadArgs,
    WorkerArgs,
    gpu_options,
)
from components.ray_node import RayNode, capacity_entry, head_start_args, worker_start_args
from stacks.offline import run_program


def test_images_build_from_their_folder_or_pull():
    def program():
        provider = docker.Provider("host", host="unix:///var/run/docker.sock")
        opts = pulumi.ResourceOptions(providers={"docker": provider})
        DockerImages("built", DockerImagesArgs(kinds=["ray_cpu"]), opts=opts)
        DockerImages("pulled", DockerImagesArgs(kinds=["ray_cpu"], source="pull",
                                                pull_refs={"ray_cpu": "rayproject/ray:2.60.0-py311-cpu"}), opts=opts)

    rec = run_program(program)
    built = rec.get("docker:index/image:Image", "built-ray-cpu")
    assert built.parent == "ray-platform:local:DockerImages::built" and built.provider == "host"
    assert built.inputs["build"]["context"] == "images/ray-cpu"
    pulled = rec.get("docker:index/remoteImage:RemoteImage", "pulled-ray-cpu")
    assert pulled.inputs["name"] == "rayproject/ray:2.60.0-py311-cpu" and pulled.inputs["keepLocally"] is True


@pytest.mark.parametrize("args,message", [
    (dict(kinds=["ray_tpu"]), "unknown image kinds ['ray_tpu']"),
    (dict(kinds=["ray_cpu"], source="pull"), "no pull reference for ['ray_cpu']"),
    (dict(kinds=["ray_cpu"], source="copy"), "source 'copy' (allowed: build, pull)"),
])
def test_image_args_are_validated(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DockerImagesArgs(**args)


def test_cluster_gives_each_worker_its_gpus_and_waits_for_the_head():
    def program():
        provider = docker.Provider("host", host="unix:///var/run/docker.sock")
        network = docker.Network("net", opts=pulumi.ResourceOptions(provider=provider))
        place = DockerPlacement(provider, network)
        DockerRayCluster("c", DockerRayClusterArgs(
            container_prefix="t",
            head=HeadArgs(node=RayNode(cpus=0, memory_gb=2), image="ray:cpu", placement=place),
            workers=[WorkerArgs(name=f"g{i}", node=RayNode(cpus=4, memory_gb=8, gpus=2), image="ray:gpu",
                                placement=place, gpu_vendor="nvidia", gpu_ids=[str(2 * i), str(2 * i + 1)])
                     for i in range(2)],
        ))

    rec = run_program(program)
    for i in range(2):
        worker = rec.get("docker:index/container:Container", f"c-g{i}")
        assert worker.inputs["deviceRequests"][0]["deviceIds"] == [str(2 * i), str(2 * i + 1)]
        assert "docker:index/container:Container::c-head" in worker.dependencies
        assert worker.provider == "host"
        assert worker.inputs["shmSize"] == int(8 * 1024 * 0.35)


def test_worker_args_reject_a_gpu_count_that_does_not_match_the_ids():
    with pytest.raises(ValueError, match="1 GPU ids for 2 GPUs"):
        WorkerArgs(name="w", node=RayNode(cpus=1, memory_gb=1, gpus=2), image="x", placement=None,
                   gpu_vendor="nvidia", gpu_ids=["0"])


def test_gpu_options_per_vendor():
    assert gpu_options("none", []) == {}
    amd = gpu_options("amd", ["1"])
    assert amd["envs_extra"] == {"ROCR_VISIBLE_DEVICES": "1", "HIP_VISIBLE_DEVICES": "1"}


def test_ray_start_arguments_and_capacity():
    node = RayNode(cpus=4, memory_gb=2, gpus=1, resources={"tuner": 1})
    head = head_start_args(node, block=False)
    assert head[:3] == ["ray", "start", "--head"] and "--block" not in head
    assert '--resources={"tuner":1}' in head
    worker = worker_start_args(node, "ray-head:6379", node_ip="10.0.0.2")
    assert worker[2] == "--address=ray-head:6379" and "--node-ip-address=10.0.0.2" in worker
    assert capacity_entry(node, 0, 3) == {"resources": {"CPU": 4, "memory": 2 * 1024**3, "GPU": 1, "tuner": 1},
                                          "min_nodes": 0, "max_nodes": 3}
