"""Ray's token authentication as every Ray process and client reads it (Ray 2.60, checked in its code).

- `RAY_AUTH_MODE=token` turns it on for the GCS, raylets and the dashboard; `disabled` turns it off, and must be
  said explicitly: with the variable unset, `ray start --head` turns auth on by itself wherever a token happens to
  exist (~/.ray/auth_token), `authentication_token_setup.maybe_enable_token_auth_if_token_available`.
- The token comes from `RAY_AUTH_TOKEN`, else the file named by `RAY_AUTH_TOKEN_PATH`, else ~/.ray/auth_token.
  A worker without the head's token cannot join: `ray start` exits 1 with `InvalidAuthToken`.
- HTTP: `Authorization: Bearer <token>`, or `X-Ray-Authorization: Bearer <token>` where a proxy owns
  `Authorization`; missing gets 401, wrong gets 403 (`http_token_authentication.get_token_auth_middleware`).
  Health endpoints (`/api/gcs_healthz`, `/api/local_raylet_healthz`, ...) stay open, so health checks need no token.
"""

from __future__ import annotations

from typing import TypeVar

AUTH_MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
HEADER = "Authorization"
PROXY_HEADER = "X-Ray-Authorization"  # where a proxy in front of Ray (SPCS ingress) owns `Authorization`

T = TypeVar("T")


def node_env(token: T | None) -> dict[str, T | str]:
    """The environment every Ray process of a cluster (and every client inside it) needs; None: auth off."""
    if token is None:
        return {AUTH_MODE_ENV: "disabled"}
    return {AUTH_MODE_ENV: "token", TOKEN_ENV: token}


def node_env_from_file(path: str) -> dict[str, str]:
    """The same, for a token kept in a file (fetched from a secret store at boot, mounted from a secret)."""
    return {AUTH_MODE_ENV: "token", TOKEN_PATH_ENV: path}


def headers(token: str | None, *, behind_proxy: bool = False) -> dict[str, str]:
    """The header that carries the token on an HTTP request to the dashboard / Jobs API."""
    if not token:
        return {}
    return {PROXY_HEADER if behind_proxy else HEADER: f"Bearer {token}"}
