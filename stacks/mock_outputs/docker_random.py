"""pulumi-docker and pulumi-random outputs."""

from __future__ import annotations

from stacks.mock_outputs import digest


def _image(name, inputs):
    image = inputs.get("imageName", name)
    return {"repoDigest": f"{image.split(':')[0]}@sha256:{digest('image', name)}", "baseImageName": image}


def _remote_image(name, inputs):
    ref, sha = inputs.get("name", name), digest("remote", name)
    return {"imageId": f"sha256:{sha}", "repoDigest": f"{ref.split(':')[0]}@sha256:{sha}"}


def _password(name, inputs):
    return {"result": "mock-" + digest("password", name, length=int(inputs.get("length", 16)) - 5),
            "bcryptHash": "$2a$10$" + digest("bcrypt", name, length=53)}


COMPUTED = {
    "docker:index/image:Image": _image,
    "docker:index/remoteImage:RemoteImage": _remote_image,
    "docker:index/volume:Volume": lambda name, inputs: {
        "mountpoint": f"/var/lib/docker/volumes/{inputs.get('name', name)}/_data", "driver": "local"},
    "random:index/randomPassword:RandomPassword": _password,
    "random:index/randomId:RandomId": lambda name, inputs: {"hex": digest("id", name, length=8),
                                                            "b64Url": digest("id", name, length=11)},
}
