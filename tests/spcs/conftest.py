"""The `spcs` stack under mocks, with secrets set the way `pulumi config set --secret` would."""

from __future__ import annotations

import pytest

from stacks.offline import Recording, preview

FAKE_PEM = "-----BEGIN PRIVATE KEY-----\nMIIfake\n-----END PRIVATE KEY-----\n"
SECRETS = {"private_key": FAKE_PEM, "registry_token": "pat-registry-token-123",
           "grafana_admin_password": "grafana-secret-pw"}


@pytest.fixture(scope="session")
def spcs() -> Recording:
    return preview("spcs", secret_overrides=SECRETS)
