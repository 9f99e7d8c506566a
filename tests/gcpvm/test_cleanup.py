"""The destroy-time cleanup against a fake Compute client: what it stops, lists and deletes, and what not."""

from __future__ import annotations

import pytest

from components.gcpvm import cleanup
from components.gcpvm.cleanup import Target, WorkerCleanupProvider, terminate_workers

TARGET = Target("my-ray-project", "us-west1-b", "autotuner", "autotuner-head")


class FakeCompute:
    """Instances in one zone; a worker launched by a still-running autoscaler appears on the second listing."""

    def __init__(self, instances: list[dict], late: list[dict] | None = None):
        self.instances = {i["name"]: i for i in instances}
        self.late = list(late or [])
        self.calls: list[tuple] = []

    def stop_instance(self, project, zone, name):
        self.calls.append(("stop", project, zone, name))

    def list_instances(self, project, zone, filter_expr):
        self.calls.append(("list", project, zone, filter_expr))
        found = [i for i in self.instances.values()
                 if i["labels"].get("ray-cluster-name") == "autotuner" and i["labels"].get("ray-node-type") == "worker"]
        for instance in self.late:
            self.instances[instance["name"]] = instance
        self.late = []
        return found

    def delete_instance(self, project, zone, name):
        self.calls.append(("delete", project, zone, name))
        del self.instances[name]


def vm(name: str, cluster: str, kind: str) -> dict:
    return {"name": name, "status": "RUNNING", "labels": {"ray-cluster-name": cluster, "ray-node-type": kind}}


def test_stops_the_head_first_then_deletes_only_this_clusters_workers():
    fake = FakeCompute([vm("autotuner-head", "autotuner", "head"), vm("w-1", "autotuner", "worker"),
                        vm("w-2", "autotuner", "worker"), vm("other-w", "other", "worker")],
                       late=[vm("w-3", "autotuner", "worker")])
    deleted = terminate_workers(fake, TARGET, poll_s=0, sleep=lambda _: None)
    assert fake.calls[0] == ("stop", "my-ray-project", "us-west1-b", "autotuner-head")
    assert deleted == ["w-1", "w-2", "w-3"]
    assert set(fake.instances) == {"autotuner-head", "other-w"}  # Pulumi deletes the head; others untouched
    filters = {c[3] for c in fake.calls if c[0] == "list"}
    assert filters == {"(labels.ray-cluster-name = autotuner) AND (labels.ray-node-type = worker)"}


def test_a_label_filter_the_api_ignored_cannot_delete_another_clusters_vm():
    class IgnoresFilter(FakeCompute):
        def list_instances(self, project, zone, filter_expr):
            self.calls.append(("list", project, zone, filter_expr))
            return [i for i in self.instances.values() if i["labels"]["ray-node-type"] == "worker"]

    fake = IgnoresFilter([vm("w-1", "autotuner", "worker"), vm("other-w", "other", "worker")])
    assert terminate_workers(fake, TARGET, poll_s=0, sleep=lambda _: None) == ["w-1"]
    assert "other-w" in fake.instances


def test_gives_up_with_the_names_left_after_the_timeout():
    class NeverGone(FakeCompute):
        def delete_instance(self, project, zone, name):
            self.calls.append(("delete", project, zone, name))

    fake = NeverGone([vm("w-1", "autotuner", "worker")])
    with pytest.raises(TimeoutError, match="still exist after 0 s: w-1"):
        terminate_workers(fake, TARGET, timeout_s=0, poll_s=0, sleep=lambda _: None)


def test_provider_reads_credentials_only_when_deleting(monkeypatch):
    made: list[FakeCompute] = []

    def client():
        made.append(FakeCompute([vm("w-1", "autotuner", "worker")]))
        return made[-1]

    monkeypatch.setattr(cleanup, "RestComputeClient", client)
    monkeypatch.setattr(cleanup, "POLL_S", 0)
    provider = WorkerCleanupProvider()
    props = {"project": "my-ray-project", "zone": "us-west1-b", "cluster_name": "autotuner",
             "head_name": "autotuner-head", "timeout_s": 5}
    created = provider.create(props)
    assert created.id == "my-ray-project/us-west1-b/autotuner" and not made
    provider.update(created.id, props, props)
    assert not made
    provider.delete(created.id, props)
    assert len(made) == 1 and ("delete", "my-ray-project", "us-west1-b", "w-1") in made[0].calls
    assert vars(provider) == {}  # nothing captured, so nothing pickled into state


def test_diff_never_asks_for_a_replacement():
    provider = WorkerCleanupProvider()
    old = {"project": "p", "zone": "z", "cluster_name": "c", "head_name": "h", "timeout_s": 600, "__provider": "a"}
    changed = provider.diff("id", old, {**old, "head_name": "h2", "__provider": "b"})
    assert changed.changes and changed.replaces == [] and not changed.delete_before_replace
    assert not provider.diff("id", old, {**old, "__provider": "b"}).changes
