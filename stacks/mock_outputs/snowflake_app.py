"""Outputs for the Native App stacks: the dynamic resources' results and what the app's procedures answer.

Loaded after snowflake.py (modules load in name order), so its `Execute` answer is extended, not lost.
"""

from __future__ import annotations

from stacks.mock_outputs import digest
from stacks.mock_outputs import snowflake as base

PREFIX = "pulumi-python:dynamic/spcs_app"


def _execute(name, inputs):
    query = str(inputs.get("query", ""))
    if query.startswith("CALL ") and query.endswith(".app_public.service_endpoints()"):
        return {"queryResults": [
            {"name": endpoint, "is_public": "true", "protocol": "HTTP",
             "ingress_url": f"{digest('app-ingress', name, endpoint, length=8)}-{base.ACCOUNT_HOST}.snowflakecomputing.app"}
            for endpoint in base.PUBLIC_ENDPOINTS
        ]}
    return base._execute(name, inputs)


def _files(name, inputs):
    # Dynamic resources keep the Python names the program gave them (no camelCase).
    return {"location": f"@{inputs.get('stage', '')}/{inputs.get('folder', '')}"}


def _version(name, inputs):
    return {"patch": 0}


COMPUTED = {
    "snowflake:index/execute:Execute": _execute,
    f"{PREFIX}:AppStageFiles": _files,
    f"{PREFIX}:AppVersion": _version,
}
