"""CloudBuildImage: a Pulumi dynamic resource that builds one image with Cloud Build and returns its digest.

pulumi-gcp 10.2.0 has no resource that runs a build (`cloudbuild.Trigger` only defines one, `cloudbuildv2`
connects repositories), so this small provider calls the Cloud Build REST API: it packs the build context
(passed in as file contents, so a changed context is a changed input and the only thing that rebuilds),
uploads it to a staging bucket, creates the build on the private pool, waits for it, and reads the pushed
image's digest from the build's results. Credentials are Application Default Credentials read at run time
inside the provider's methods; nothing secret is ever pickled into the state.
"""

from __future__ import annotations

from typing import Any

from pulumi import Input, Output, ResourceOptions
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from components.dynamic import pickled_by_value


class CloudBuildImageProvider(ResourceProvider):
    """Create = one build; every input change replaces (a new build); delete leaves the image to the
    repository's cleanup policies (running workloads may still pull it by digest)."""

    # Everything the methods use lives on the class: it is pickled by value into the state (see CloudBuildImage).
    CLOUD_BUILD_API = "https://cloudbuild.googleapis.com/v1"
    STORAGE_UPLOAD_API = "https://storage.googleapis.com/upload/storage/v1"
    TRACKED = ("project", "location", "image", "context_hash", "build", "source_bucket", "source_object")
    TERMINAL = ("SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED")
    SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

    def __init__(self, session: Any = None, poll_seconds: float = 15.0, sleep: Any = None):
        # A session and sleep are injected by tests only; the deployed provider makes its own at run time.
        self._session = session
        self._sleep = sleep
        self.poll_seconds = poll_seconds

    # ------------------------------------------------------------------------------------- plumbing

    def _http(self) -> Any:
        if self._session is not None:
            return self._session
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=list(self.SCOPES))
        return AuthorizedSession(credentials)

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
            return
        import time

        time.sleep(seconds)

    @staticmethod
    def archive(files: dict[str, str]) -> bytes:
        """The build context as a reproducible .tar.gz (sorted names, zero mtimes)."""
        import gzip
        import io
        import tarfile

        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            for path in sorted(files):
                data = files[path].encode()
                info = tarfile.TarInfo(path)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
        return gzip.compress(raw.getvalue(), mtime=0)

    @staticmethod
    def _check(response: Any, what: str) -> dict[str, Any]:
        if response.status_code >= 300:
            raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json()

    # ------------------------------------------------------------------------------------- a build

    def build(self, props: dict[str, Any]) -> dict[str, Any]:
        http = self._http()
        bucket, obj = props["source_bucket"], props["source_object"]
        self._check(http.post(f"{self.STORAGE_UPLOAD_API}/b/{bucket}/o", params={"uploadType": "media", "name": obj},
                              data=self.archive(props["files"]), headers={"Content-Type": "application/gzip"}),
                    f"uploading the build context to gs://{bucket}/{obj}")
        base = f"{self.CLOUD_BUILD_API}/projects/{props['project']}/locations/{props['location']}/builds"
        body = {**props["build"], "source": {"storageSource": {"bucket": bucket, "object": obj}}}
        operation = self._check(http.post(base, json=body), "creating the build")
        build_id = operation["metadata"]["build"]["id"]
        deadline_polls = int(float(props["timeout_seconds"]) / self.poll_seconds) + 2
        build: dict[str, Any] = {}
        for _ in range(deadline_polls):
            build = self._check(http.get(f"{base}/{build_id}"), f"reading build {build_id}")
            if build.get("status") in self.TERMINAL:
                break
            self._wait(self.poll_seconds)
        status = build.get("status")
        if status not in self.TERMINAL:
            raise RuntimeError(f"build {build_id} of {props['image']} is still {status} after "
                               f"{props['timeout_seconds']}s (logs: {build.get('logUrl', 'n/a')})")
        if status != "SUCCESS":
            raise RuntimeError(f"build {build_id} of {props['image']} ended {status}: "
                              f"{build.get('statusDetail', '')} (logs: {build.get('logUrl', 'n/a')})")
        images = (build.get("results") or {}).get("images") or []
        digest = next((i["digest"] for i in images if i.get("name") == props["image"]), None)
        if digest is None:
            raise RuntimeError(f"build {build_id} pushed no {props['image']} (results: {images}); "
                              "the build config must list it under `images:`")
        repository = props["image"].rsplit(":", 1)[0] if ":" in props["image"].rsplit("/", 1)[-1] else props["image"]
        return {"build_id": build_id, "digest": digest, "image_ref": f"{repository}@{digest}",
                "log_url": build.get("logUrl", "")}

    # ------------------------------------------------------------------------------------- the CRUD

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self.build(props)
        return CreateResult(id_=outs["build_id"], outs={**props, **outs})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in self.TRACKED if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class CloudBuildImage(Resource, module="gke", name="CloudBuildImage"):
    """Outputs: `digest` (sha256:...), `image_ref` (repository@digest: what everything downstream deploys)."""

    digest: Output[str]
    image_ref: Output[str]
    build_id: Output[str]
    log_url: Output[str]

    def __init__(self, name: str, props: dict[str, Input[Any]], opts: ResourceOptions | None = None,
                 provider: CloudBuildImageProvider | None = None):
        provider = provider or CloudBuildImageProvider()
        with pickled_by_value(type(provider)):
            super().__init__(provider, name,
                             {**props, "digest": None, "image_ref": None, "build_id": None, "log_url": None}, opts)
