"""The Native App stacks under mocks, with secrets set the way `pulumi config set --secret` would."""

from __future__ import annotations

import pytest

from stacks.offline import Recording, preview

FAKE_PEM = "-----BEGIN PRIVATE KEY-----\nMIIfake\n-----END PRIVATE KEY-----\n"
SECRETS = {"private_key": FAKE_PEM, "registry_token": "pat-registry-token-123"}


@pytest.fixture(scope="session")
def provider_stack() -> Recording:
    return preview("spcs-app", secret_overrides=SECRETS)


@pytest.fixture(scope="session")
def consumer_stack() -> Recording:
    return preview("spcs-consumer", secret_overrides={"private_key": FAKE_PEM})
