"""The Cloud Build image dynamic provider against a fake HTTP session: upload, build, wait, digest; failures
are clear; only a changed context (or target) rebuilds; it pickles without credentials or this repository."""

from __future__ import annotations

import base64
import gzip
import io
import subprocess
import sys
import tarfile

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.gke.cloud_build_image import CloudBuildImageProvider, pickled_by_value

IMAGE = "europe-west1-docker.pkg.dev/p/ray-docker/ray-base:abc123"
DIGEST = "sha256:" + "a" * 64


class FakeResponse:
    def __init__(self, status_code: int, body: dict):
        self.status_code, self._body = status_code, body
        self.text = str(body)

    def json(self) -> dict:
        return self._body


class FakeSession:
    """Answers like Cloud Storage and Cloud Build: the build is WORKING `working_polls` times, then `final`."""

    def __init__(self, final: dict, working_polls: int = 2, upload_status: int = 200):
        self.final, self.working_polls, self.upload_status = final, working_polls, upload_status
        self.calls: list[tuple[str, str, dict]] = []

    def post(self, url, **kwargs):
        self.calls.append(("POST", url, kwargs))
        if "/upload/storage/" in url:
            return FakeResponse(self.upload_status, {"name": kwargs["params"]["name"]})
        return FakeResponse(200, {"name": "operations/1", "metadata": {"build": {"id": "build-1"}}})

    def get(self, url, **kwargs):
        self.calls.append(("GET", url, kwargs))
        if self.working_polls:
            self.working_polls -= 1
            return FakeResponse(200, {"id": "build-1", "status": "WORKING"})
        return FakeResponse(200, {"id": "build-1", "logUrl": "https://logs/build-1", **self.final})


def props(**overrides) -> dict:
    base = {"project": "p", "location": "europe-west1", "image": IMAGE, "context_hash": "abc123",
            "files": {"Dockerfile": "FROM x\n", "cloudbuild.yaml": "steps: []\n"},
            "build": {"steps": [{"name": "gcr.io/cloud-builders/docker"}], "images": ["${_IMAGE}"],
                      "substitutions": {"_IMAGE": IMAGE}},
            "source_bucket": "p-ray-build-sources", "source_object": "sources/ray-base-abc.tar.gz",
            "timeout_seconds": 600}
    return {**base, **overrides}


def provider(session: FakeSession) -> tuple[CloudBuildImageProvider, list[float]]:
    slept: list[float] = []
    return CloudBuildImageProvider(session=session, poll_seconds=10, sleep=slept.append), slept


def test_a_build_uploads_the_context_creates_the_build_waits_and_returns_the_digest():
    session = FakeSession({"status": "SUCCESS", "results": {"images": [{"name": IMAGE, "digest": DIGEST}]}})
    p, slept = provider(session)
    result = p.create(props())
    assert result.id == "build-1"
    assert result.outs["digest"] == DIGEST
    assert result.outs["image_ref"] == f"europe-west1-docker.pkg.dev/p/ray-docker/ray-base@{DIGEST}"
    upload, create = session.calls[0], session.calls[1]
    assert upload[1] == "https://storage.googleapis.com/upload/storage/v1/b/p-ray-build-sources/o"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(upload[2]["data"]))) as tar:
        assert sorted(tar.getnames()) == ["Dockerfile", "cloudbuild.yaml"]
    assert create[1] == "https://cloudbuild.googleapis.com/v1/projects/p/locations/europe-west1/builds"
    assert create[2]["json"]["source"] == {"storageSource": {"bucket": "p-ray-build-sources",
                                                             "object": "sources/ray-base-abc.tar.gz"}}
    assert [c[1].rsplit("/", 1)[-1] for c in session.calls[2:]] == ["build-1"] * 3
    assert slept == [10, 10]


def test_the_archive_is_reproducible():
    files = {"b": "2", "a": "1"}
    assert CloudBuildImageProvider.archive(files) == CloudBuildImageProvider.archive(dict(reversed(files.items())))


def test_a_failed_build_names_its_status_and_logs():
    p, _ = provider(FakeSession({"status": "FAILURE", "statusDetail": "step 0 exited 1"}))
    with pytest.raises(RuntimeError, match=r"build build-1 of .* ended FAILURE: step 0 exited 1 \(logs: https://logs"):
        p.create(props())


def test_a_build_that_pushed_nothing_says_images_must_list_it():
    p, _ = provider(FakeSession({"status": "SUCCESS", "results": {"images": []}}))
    with pytest.raises(RuntimeError, match="must list it under `images:`"):
        p.create(props())


def test_an_upload_refused_stops_before_any_build():
    session = FakeSession({"status": "SUCCESS"}, upload_status=403)
    p, _ = provider(session)
    with pytest.raises(RuntimeError, match="uploading the build context to gs://p-ray-build-sources/.*HTTP 403"):
        p.create(props())
    assert len(session.calls) == 1


def test_a_build_still_running_at_the_timeout_fails():
    p, slept = provider(FakeSession({"status": "SUCCESS"}, working_polls=1000))
    with pytest.raises(RuntimeError, match=r"build build-1 of .* is still WORKING after 30s"):
        p.create(props(timeout_seconds=30))
    assert len(slept) == 5  # 30 s / 10 s + 2 polls


def test_only_a_changed_context_or_target_rebuilds():
    p = CloudBuildImageProvider()
    same = p.diff("build-1", {**props(), "digest": DIGEST}, props())
    assert same.changes is False
    changed = p.diff("build-1", props(), props(context_hash="def456", files={"Dockerfile": "FROM y\n"}))
    assert changed.changes is True and changed.replaces == ["context_hash"]


def test_delete_leaves_the_image_to_the_registry_cleanup():
    session = FakeSession({"status": "SUCCESS"})
    p, _ = provider(session)
    assert p.delete("build-1", props()) is None and session.calls == []


def test_the_provider_pickles_by_value_without_credentials(tmp_path):
    """The state holds the provider: it must load where this repository is not importable, and hold no secret."""
    with pickled_by_value(CloudBuildImageProvider):
        blob = serialize_provider(CloudBuildImageProvider())
    assert CloudBuildImageProvider.__module__ == "components.gke.cloud_build_image"  # restored afterwards
    code = ("import base64, sys, dill; p = dill.loads(base64.b64decode(sys.stdin.read())); "
            "print(type(p).__name__, p._session, p.diff('i', {'image': 'a'}, {'image': 'b'}).replaces)")
    result = subprocess.run([sys.executable, "-I", "-c", code], input=blob, cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["CloudBuildImageProvider", "None", "['image']"]
    assert b"token" not in base64.b64decode(blob).lower()
