"""pulumi-gcp outputs the `gke` stack reads (ids, self links, emails, endpoints), and the Cloud Build image
dynamic resource's digest, shaped like the real API's answers."""

from __future__ import annotations

import base64

from stacks.mock_outputs import digest

PROJECT = "mock-project"


def _project(inputs) -> str:
    return inputs.get("project", PROJECT)


def _network(name, inputs):
    n = inputs.get("name", name)
    path = f"projects/{_project(inputs)}/global/networks/{n}"
    return {"id": path, "selfLink": f"https://www.googleapis.com/compute/v1/{path}", "name": n}


def _subnetwork(name, inputs):
    n = inputs.get("name", name)
    path = f"projects/{_project(inputs)}/regions/{inputs.get('region', 'us-central1')}/subnetworks/{n}"
    return {"id": path, "selfLink": f"https://www.googleapis.com/compute/v1/{path}", "name": n}


def _account(name, inputs):
    email = f"{inputs.get('accountId', name)}@{_project(inputs)}.iam.gserviceaccount.com"
    return {"email": email, "member": f"serviceAccount:{email}",
            "name": f"projects/{_project(inputs)}/serviceAccounts/{email}", "uniqueId": digest("sa", name, length=21)}


def _cluster(name, inputs):
    n = inputs.get("name", name)
    ca = base64.b64encode(f"-----BEGIN CERTIFICATE-----\n{digest('ca', name)}\n-----END CERTIFICATE-----".encode())
    return {"id": f"projects/{_project(inputs)}/locations/{inputs.get('location')}/clusters/{n}", "name": n,
            "endpoint": f"34.118.{int(digest('ip', name, length=2), 16) % 250}.10",
            "masterAuth": {"clusterCaCertificate": ca.decode()},
            "selfLink": f"https://container.googleapis.com/v1/projects/{_project(inputs)}/clusters/{n}"}


def _node_pool(name, inputs):
    n = inputs.get("name", name)
    return {"id": f"{inputs.get('cluster')}/nodePools/{n}", "name": n}


def _bucket(name, inputs):
    n = inputs.get("name", name)
    return {"url": f"gs://{n}", "selfLink": f"https://www.googleapis.com/storage/v1/b/{n}", "name": n}


def _repository(name, inputs):
    repo = inputs.get("repositoryId", name)
    return {"id": f"projects/{_project(inputs)}/locations/{inputs.get('location')}/repositories/{repo}",
            "name": repo}


def _worker_pool(name, inputs):
    n = inputs.get("name", name)
    return {"id": f"projects/{_project(inputs)}/locations/{inputs.get('location')}/workerPools/{n}", "name": n}


def _image(name, inputs):
    # A dynamic resource's properties keep the Python names the program gave them (no camelCase).
    sha = f"sha256:{digest('build', name, inputs.get('context_hash', ''))}"
    image, build_id = inputs.get("image", name), digest("id", name, length=36)
    return {"digest": sha, "image_ref": f"{image.rsplit(':', 1)[0]}@{sha}", "build_id": build_id,
            "log_url": f"https://console.cloud.google.com/cloud-build/builds/{build_id}"}


COMPUTED = {
    "gcp:compute/network:Network": _network,
    "gcp:compute/subnetwork:Subnetwork": _subnetwork,
    "gcp:serviceaccount/account:Account": _account,
    "gcp:container/cluster:Cluster": _cluster,
    "gcp:container/nodePool:NodePool": _node_pool,
    "gcp:storage/bucket:Bucket": _bucket,
    "gcp:artifactregistry/repository:Repository": _repository,
    "gcp:cloudbuild/workerPool:WorkerPool": _worker_pool,
    "gcp:compute/globalAddress:GlobalAddress": lambda name, inputs: {"name": inputs.get("name", name)},
    "pulumi-python:dynamic/gke:CloudBuildImage": _image,
}
