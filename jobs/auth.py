"""Ray's token on every request the client sends, and one clear error when the cluster refuses it.

The token is the stack's `ray_auth_token` output, else `RAY_AUTH_TOKEN` (a cluster named only by RAY_ADDRESS, or
a stack deployed with `ray_auth: disabled` that someone turned on by hand). It travels as `Authorization: Bearer`,
or as `X-Ray-Authorization: Bearer` behind SPCS ingress, which owns `Authorization` (components/ray_auth.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.ray_auth import TOKEN_ENV, headers
from jobs import EXIT_AUTH, JobsError

REQUIRES = "the cluster requires a token"
HOW = "`pulumi stack output ray_auth_token --show-secrets`"


def token_of(outputs: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The token to send and where it came from (for error messages), or (None, None)."""
    if outputs.get("ray_auth_token"):
        return outputs["ray_auth_token"], "the stack output ray_auth_token"
    if environ.get(TOKEN_ENV):
        return environ[TOKEN_ENV], TOKEN_ENV
    return None, None


def request_headers(outputs: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """The header that carries the token in this access mode (none without a token)."""
    token, _ = token_of(outputs, environ)
    behind_proxy = (outputs.get("access") or {}).get("mode") == "snowflake"
    return headers(token, behind_proxy=behind_proxy)


def refused(exc: BaseException, outputs: Mapping[str, Any], environ: Mapping[str, str]) -> JobsError:
    """The one-line error for Ray's AuthenticationError: 401 (no token arrived) or 403 (a wrong one did).
    Ray words them "Authentication required" / "Authentication failed" (http_token_authentication.py)."""
    _, source = token_of(outputs, environ)
    if source is None:
        why = f"none was sent (the outputs have no ray_auth_token and {TOKEN_ENV} is unset; get it with {HOW})"
    elif str(exc).startswith("Authentication failed"):
        why = f"the token from {source} is not the cluster's (403 Forbidden; the cluster's is {HOW})"
    else:
        why = f"the token from {source} did not reach it (401 Unauthorized: a proxy on the way dropped the header?)"
    return JobsError(f"{REQUIRES}: {why}", EXIT_AUTH)
