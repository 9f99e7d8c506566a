"""ArtifactRegistry: docker and python repositories, each as local + remote (Docker Hub, PyPI) + virtual.

Images and packages are read through the virtual repositories (local first, then the cached upstream), so
private nodes and the private Cloud Build pool need no direct internet access for them. The local docker
repository keeps its size in check with cleanup policies. Readers (the node service account) get read only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

READER_ROLE = "roles/artifactregistry.reader"
SECONDS_PER_DAY = 86400
LOCAL_PRIORITY, REMOTE_PRIORITY = 100, 50  # the higher number wins: our own artifacts before the upstream's


@dataclass(frozen=True)
class ArtifactRegistryArgs:
    project: str
    location: str
    prefix: str
    keep_recent_versions: int = 10
    delete_untagged_after_days: int = 14
    readers: list[pulumi.Input[str]] = field(default_factory=list)  # IAM members
    depends_on: list[pulumi.Resource] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.keep_recent_versions < 1:
            raise ValueError(f"keep_recent_versions: {self.keep_recent_versions} (allowed: >= 1)")
        if self.delete_untagged_after_days < 1:
            raise ValueError(f"delete_untagged_after_days: {self.delete_untagged_after_days} (allowed: >= 1)")


class ArtifactRegistry(pulumi.ComponentResource):
    repositories: dict[str, gcp.artifactregistry.Repository]  # docker, docker-hub, docker-virtual, python, ...
    docker_local: pulumi.Output[str]  # <location>-docker.pkg.dev/<project>/<repo>: where builds push
    docker_virtual: pulumi.Output[str]  # what clusters and builds pull through
    python_index_url: pulumi.Output[str]  # pip --index-url of the python virtual repository

    def __init__(self, name: str, args: ArtifactRegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gke:ArtifactRegistry", name, None, opts)
        self._base, self._args = name, args
        p = args.prefix
        docker = self._repo("docker", "DOCKER", mode="STANDARD_REPOSITORY", cleanup_policies=[
            {"id": "delete-untagged", "action": "DELETE",
             "condition": {"tag_state": "UNTAGGED",
                           "older_than": f"{args.delete_untagged_after_days * SECONDS_PER_DAY}s"}},
            {"id": "keep-recent", "action": "KEEP",
             "most_recent_versions": {"keep_count": args.keep_recent_versions}},
        ], cleanup_policy_dry_run=False)
        docker_hub = self._repo("docker-hub", "DOCKER", mode="REMOTE_REPOSITORY", remote_repository_config={
            "description": "Docker Hub", "docker_repository": {"public_repository": "DOCKER_HUB"}})
        docker_virtual = self._repo("docker-virtual", "DOCKER", mode="VIRTUAL_REPOSITORY",
                                    virtual_repository_config={"upstream_policies": [
                                        {"id": "local", "repository": docker.id, "priority": LOCAL_PRIORITY},
                                        {"id": "docker-hub", "repository": docker_hub.id, "priority": REMOTE_PRIORITY},
                                    ]})
        python = self._repo("python", "PYTHON", mode="STANDARD_REPOSITORY")
        pypi = self._repo("pypi", "PYTHON", mode="REMOTE_REPOSITORY", remote_repository_config={
            "description": "PyPI", "python_repository": {"public_repository": "PYPI"}})
        python_virtual = self._repo("python-virtual", "PYTHON", mode="VIRTUAL_REPOSITORY",
                                    virtual_repository_config={"upstream_policies": [
                                        {"id": "local", "repository": python.id, "priority": LOCAL_PRIORITY},
                                        {"id": "pypi", "repository": pypi.id, "priority": REMOTE_PRIORITY},
                                    ]})
        self.repositories = {"docker": docker, "docker-hub": docker_hub, "docker-virtual": docker_virtual,
                             "python": python, "pypi": pypi, "python-virtual": python_virtual}
        for key, repo in self.repositories.items():
            for i, member in enumerate(args.readers):
                gcp.artifactregistry.RepositoryIamMember(
                    f"{name}-{key}-reader-{i}", project=args.project, location=args.location,
                    repository=repo.name, role=READER_ROLE, member=member, opts=pulumi.ResourceOptions(parent=self))
        host = f"{args.location}-docker.pkg.dev/{args.project}"
        self.docker_local = docker.repository_id.apply(lambda r: f"{host}/{r}")
        self.docker_virtual = docker_virtual.repository_id.apply(lambda r: f"{host}/{r}")
        self.python_index_url = python_virtual.repository_id.apply(
            lambda r: f"https://{args.location}-python.pkg.dev/{args.project}/{r}/simple/")
        self.register_outputs({"docker_local": self.docker_local, "docker_virtual": self.docker_virtual,
                               "python_index_url": self.python_index_url, "prefix": p})

    def _repo(self, key: str, fmt: str, **kwargs) -> gcp.artifactregistry.Repository:
        return gcp.artifactregistry.Repository(
            f"{self._base}-{key}",
            repository_id=f"{self._args.prefix}-{key}",
            project=self._args.project,
            location=self._args.location,
            format=fmt,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._args.depends_on),
            **kwargs,
        )
