"""The `Authorization: Snowflake Token="..."` header for SPCS public endpoints (the Ray dashboard on SPCS).

The token is either read from an environment variable (a programmatic access token, or a token you got
yourself), or made here by Snowflake key-pair authentication: an RS256 JWT signed with the user's private
key (claims as in Snowflake's "Generate a JWT token" docs), exchanged at `<account>/oauth/token` for a
token scoped to the endpoint's host. Only `cryptography` and `requests` are needed (both come with Ray).

`access` output fields (all optional but `mode`):
    token_env          env var holding a token (default SNOWFLAKE_TOKEN); wins when set
    private_key_env    env var holding the path of a PKCS#8 PEM private key (default SNOWFLAKE_PRIVATE_KEY_PATH)
    account, user      Snowflake account identifier and user name, for the JWT
    role               optional role for the token's scope
    account_url        optional, default https://<account>.snowflakecomputing.com
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from jobs import JobsError

JWT_LIFETIME_S = 59 * 60  # Snowflake accepts at most one hour
PASSPHRASE_ENV = "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"


def headers(access: Mapping[str, Any], dashboard_url: str, environ: Mapping[str, str]) -> dict[str, str]:
    token_env = access.get("token_env") or "SNOWFLAKE_TOKEN"
    key_env = access.get("private_key_env") or "SNOWFLAKE_PRIVATE_KEY_PATH"
    token = environ.get(token_env)
    if not token and environ.get(key_env):
        for name in ("account", "user"):
            if not access.get(name):
                raise JobsError(f"snowflake access: key-pair authentication needs access.{name} in the stack outputs")
        private_key = load_private_key(environ[key_env], environ.get(PASSPHRASE_ENV))
        jwt = key_pair_jwt(access["account"], access["user"], private_key)
        token = exchange_jwt(jwt, access["account"], urlparse(dashboard_url).hostname or "", access.get("role"),
                             access.get("account_url"))  # fmt: skip
    if not token:
        raise JobsError(
            f"snowflake access needs a token: set {token_env} (e.g. a programmatic access token), "
            f"or {key_env} to your key-pair private key file"
        )
    return authorization_header(token)


def authorization_header(token: str) -> dict[str, str]:
    return {"Authorization": f'Snowflake Token="{token.strip()}"'}


def account_for_jwt(account: str) -> str:
    """The account part of JWT claims: upper case, a locator's region (`xy12345.us-east-1`) dropped."""
    account = account.strip()
    if ".global" not in account:
        account = account.split(".")[0]
    else:
        account = account.split("-")[0]
    return account.upper()


def load_private_key(path: str, passphrase: str | None = None) -> Any:
    from cryptography.hazmat.primitives import serialization

    try:
        with open(path, "rb") as handle:
            return serialization.load_pem_private_key(handle.read(), passphrase.encode() if passphrase else None)
    except OSError as exc:
        raise JobsError(f"cannot read the Snowflake private key {path}: {exc.strerror}") from exc
    except (ValueError, TypeError) as exc:
        raise JobsError(f"{path} is not a usable PEM private key (passphrase in {PASSPHRASE_ENV}?): {exc}") from exc


def public_key_fingerprint(private_key: Any) -> str:
    """`SHA256:` + base64 of the SHA-256 of the DER public key, as `DESCRIBE USER` shows RSA_PUBLIC_KEY_FP."""
    from cryptography.hazmat.primitives import serialization

    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_pair_jwt(account: str, user: str, private_key: Any, now: float | None = None) -> str:
    """An RS256 JWT for Snowflake key-pair authentication."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    issued = int(time.time() if now is None else now)
    qualified_user = f"{account_for_jwt(account)}.{user.upper()}"
    claims = {
        "iss": f"{qualified_user}.{public_key_fingerprint(private_key)}",
        "sub": qualified_user,
        "iat": issued,
        "exp": issued + JWT_LIFETIME_S,
    }
    header = {"alg": "RS256", "typ": "JWT"}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def exchange_jwt(
    jwt: str, account: str, endpoint_host: str, role: str | None = None, account_url: str | None = None
) -> str:
    """Trade a key-pair JWT for a token that SPCS ingress accepts for `endpoint_host`."""
    import requests

    url = (account_url or f"https://{account.strip().lower()}.snowflakecomputing.com").rstrip("/") + "/oauth/token"
    scope = f"session:role:{role} {endpoint_host}" if role else endpoint_host
    data = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "scope": scope, "assertion": jwt}
    try:
        response = requests.post(url, data=data, timeout=30)
    except requests.RequestException as exc:
        raise JobsError(f"cannot reach Snowflake at {url}: {exc.__class__.__name__}") from exc
    if response.status_code != 200 or not response.text.strip():
        raise JobsError(f"Snowflake refused the key-pair token ({response.status_code}): {response.text[:200]}")
    return response.text.strip()
