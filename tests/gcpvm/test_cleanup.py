"""The destroy-time cleanup against the fake Compute API on a virtual clock: it stops the head and waits until
it is down, deletes only this cluster's workers, and catches a worker whose insert was still in flight."""

from __future__ import annotations

import pytest
from fake_gcp import ComputeRestAdapter, FakeCompute

from components.gcpvm import cleanup
from components.gcpvm.cleanup import SETTLE_S, Target, WorkerCleanupProvider, terminate_workers

HEAD = "autotuner-head-compute"
TARGET = Target("my-ray-project", "us-west1-b", "autotuner", HEAD)


def vm(name: str, cluster: str, kind: str) -> dict:
    return {"name": name, "machineType": "zones/us-west1-b/machineTypes/n2-standard-8",
            "labels": {"ray-cluster-name": cluster, "ray-node-type": kind}}


def zone(stop_s: float = 0, others: list[dict] = ()) -> FakeCompute:
    fake = FakeCompute("my-ray-project", "us-west1-b", stop_s=stop_s)
    fake.add(vm(HEAD, "autotuner", "head"))
    for instance in others:
        fake.add(instance)
    return fake


def run(fake: FakeCompute, client=None, **kwargs) -> list[str]:
    return terminate_workers(client or ComputeRestAdapter(fake), TARGET, sleep=fake.advance, clock=lambda: fake.now,
                             **kwargs)


def stopped_at(fake: FakeCompute) -> int:
    return fake.api.paths().index("instances.stop")


@pytest.mark.parametrize("stop_s", [0, 20])  # the head goes down at once, or 20 s after the stop
@pytest.mark.parametrize("workers", [[], ["w-1"]])  # the first listing may well find nothing
def test_a_worker_that_appears_one_second_after_the_stop_is_deleted(stop_s, workers):
    fake = zone(stop_s, [vm(w, "autotuner", "worker") for w in workers] + [vm("other-w", "other", "worker")])
    fake.at(1.0, lambda: fake.add(vm("w-late", "autotuner", "worker")))  # its insert was in flight at the stop
    assert run(fake) == [*workers, "w-late"]
    assert set(fake.instances) == {HEAD, "other-w"}  # Pulumi deletes the head itself; others untouched
    assert fake.instances[HEAD]["status"] == "TERMINATED"
    assert stopped_at(fake) == 0  # the stop comes first
    first_list = fake.api.paths().index("instances.list")
    assert fake.api.paths()[1:first_list] == ["instances.get"] * (first_list - 1)  # waiting for the head to stop
    assert fake.now >= stop_s + SETTLE_S  # and it returned only after two empty listings SETTLE_S apart
    filters = {kw["filter"] for path, kw in fake.api.calls if path == "instances.list"}
    assert filters == {"(labels.ray-cluster-name = autotuner) AND (labels.ray-node-type = worker)"}


def test_no_worker_is_deleted_before_the_head_is_down():
    fake = zone(20, [vm("w-1", "autotuner", "worker")])
    deletes_at: list[float] = []
    adapter = ComputeRestAdapter(fake)
    original = adapter.delete_instance
    adapter.delete_instance = lambda *a: (deletes_at.append(fake.now), original(*a))
    assert run(fake, adapter) == ["w-1"]
    assert deletes_at and min(deletes_at) >= 20


def test_a_label_filter_the_api_ignored_cannot_delete_another_clusters_vm():
    class IgnoresFilter(ComputeRestAdapter):
        def list_instances(self, project, zone, filter_expr):
            return [i for i in self.fake.instances.values() if i["labels"]["ray-node-type"] == "worker"]

    fake = zone(others=[vm("w-1", "autotuner", "worker"), vm("other-w", "other", "worker")])
    assert run(fake, IgnoresFilter(fake)) == ["w-1"]
    assert "other-w" in fake.instances


def test_gives_up_with_the_names_left_after_the_timeout():
    class NeverGone(ComputeRestAdapter):
        def delete_instance(self, project, zone, name):
            pass

    fake = zone(others=[vm("w-1", "autotuner", "worker")])
    with pytest.raises(TimeoutError, match="still exist after 60 s: w-1"):
        run(fake, NeverGone(fake), timeout_s=60)


def test_gives_up_when_the_head_never_stops():
    fake = zone(stop_s=10_000)
    with pytest.raises(TimeoutError, match=f"head VM '{HEAD}' is still STOPPING"):
        run(fake, timeout_s=60)


def test_provider_reads_credentials_only_when_deleting(monkeypatch):
    made: list[ComputeRestAdapter] = []
    runs: list[tuple] = []

    def client():
        made.append(ComputeRestAdapter(zone()))
        return made[-1]

    monkeypatch.setattr(cleanup, "RestComputeClient", client)
    monkeypatch.setattr(cleanup, "terminate_workers", lambda *args: runs.append(args))
    provider = WorkerCleanupProvider()
    props = {"project": "my-ray-project", "zone": "us-west1-b", "cluster_name": "autotuner", "head_name": HEAD,
             "timeout_s": 600}
    created = provider.create(props)
    assert created.id == "my-ray-project/us-west1-b/autotuner" and not made
    provider.update(created.id, props, props)
    assert not made
    provider.delete(created.id, props)
    assert len(made) == 1 and runs == [(made[0], TARGET, 600.0)]
    assert vars(provider) == {}  # nothing captured, so nothing pickled into state


def test_diff_never_asks_for_a_replacement():
    provider = WorkerCleanupProvider()
    old = {"project": "p", "zone": "z", "cluster_name": "c", "head_name": "h", "timeout_s": 600, "__provider": "a"}
    changed = provider.diff("id", old, {**old, "head_name": "h2", "__provider": "b"})
    assert changed.changes and changed.replaces == [] and not changed.delete_before_replace
    assert not provider.diff("id", old, {**old, "__provider": "b"}).changes
