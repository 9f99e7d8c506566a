"""pulumi-gcp (the resources the gcpvm stack reads) and pulumi-tls outputs, as the providers would answer."""

from __future__ import annotations

from stacks.mock_outputs import digest

API = "https://www.googleapis.com/compute/v1"


def _project(inputs) -> str:
    return inputs.get("project", "mock-project")


def _network(name, inputs):
    n = inputs.get("name", name)
    return {"selfLink": f"{API}/projects/{_project(inputs)}/global/networks/{n}",
            "numericId": str(int(digest("net", name, length=12), 16))}


def _subnetwork(name, inputs):
    n = inputs.get("name", name)
    path = f"projects/{_project(inputs)}/regions/{inputs.get('region', 'us-west1')}/subnetworks/{n}"
    cidr = inputs.get("ipCidrRange", "10.10.0.0/20")
    return {"selfLink": f"{API}/{path}", "gatewayAddress": cidr.rsplit(".", 2)[0] + ".0.1"}


def _instance(name, inputs):
    n = inputs.get("name", name)
    nics = [{**nic, "networkIp": f"10.10.0.{2 + i}", "name": f"nic{i}"}
            for i, nic in enumerate(inputs.get("networkInterfaces", []))]
    return {"networkInterfaces": nics, "instanceId": str(int(digest("vm", name, length=15), 16)),
            "selfLink": f"{API}/projects/{_project(inputs)}/zones/{inputs.get('zone', 'us-west1-b')}/instances/{n}",
            "cpuPlatform": "Intel Cascade Lake"}


def _account(name, inputs):
    mail = f"{inputs.get('accountId', name)}@{_project(inputs)}.iam.gserviceaccount.com"
    return {"email": mail, "member": f"serviceAccount:{mail}", "uniqueId": str(int(digest("sa", name, length=15), 16)),
            "name": f"projects/{_project(inputs)}/serviceAccounts/{mail}"}


def _secret(name, inputs):
    return {"name": f"projects/{int(digest('p', _project(inputs), length=10), 16)}/secrets/{inputs.get('secretId', name)}"}


def _private_key(name, inputs):
    body = digest("ssh", name, length=43)
    return {"publicKeyOpenssh": f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA{body}\n",
            "privateKeyOpenssh": f"-----BEGIN OPENSSH PRIVATE KEY-----\nmock{body}\n-----END OPENSSH PRIVATE KEY-----\n",
            "privateKeyPem": f"-----BEGIN PRIVATE KEY-----\nmock{body}\n-----END PRIVATE KEY-----\n",
            "publicKeyFingerprintSha256": f"SHA256:{digest('fp', name, length=43)}"}


COMPUTED = {
    "gcp:compute/network:Network": _network,
    "gcp:compute/subnetwork:Subnetwork": _subnetwork,
    "gcp:compute/instance:Instance": _instance,
    "gcp:serviceaccount/account:Account": _account,
    "gcp:secretmanager/secret:Secret": _secret,
    "gcp:storage/bucket:Bucket": lambda name, inputs: {"url": f"gs://{inputs.get('name', name)}",
                                                       "selfLink": f"https://www.googleapis.com/storage/v1/b/"
                                                                   f"{inputs.get('name', name)}"},
    "tls:index/privateKey:PrivateKey": _private_key,
}
