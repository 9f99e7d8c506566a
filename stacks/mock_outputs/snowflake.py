"""pulumi-snowflake outputs: fully qualified names, the image repository URL, service DNS names, endpoints."""

from __future__ import annotations

from stacks.mock_outputs import digest

ACCOUNT_HOST = "myorg-myaccount"  # what `<org>-<account>` looks like in registry and ingress host names
PUBLIC_ENDPOINTS = ("dashboard", "serve", "grafana", "prometheus", "jupyter", "spark-ui")


def _quoted(*parts: str) -> str:
    return ".".join(f'"{p}"' for p in parts)


def _account_object(name, inputs):
    return {"fullyQualifiedName": _quoted(inputs.get("name", name))}


def _schema_object(name, inputs):
    return {"fullyQualifiedName": _quoted(inputs.get("database", ""), inputs.get("schema", ""),
                                          inputs.get("name", name))}


def _repository(name, inputs):
    db, schema, repo = inputs.get("database", ""), inputs.get("schema", ""), inputs.get("name", name)
    url = f"{ACCOUNT_HOST}.registry.snowflakecomputing.com/{db}/{schema}/{repo}".lower()
    return {**_schema_object(name, inputs), "showOutputs": [{"name": repo, "repositoryUrl": url}]}


def _service(name, inputs):
    service = inputs.get("name", name)
    dns = f"{service.lower().replace('_', '-')}.{digest('svc', name, length=8)}.svc.spcs.internal"
    return {**_schema_object(name, inputs),
            "showOutputs": [{"name": service, "dnsName": dns, "status": "RUNNING",
                             "computePool": inputs.get("computePool", "")}]}


def _endpoints(name, inputs):
    """The readiness wait's result: every public endpoint provisioned (dynamic resources keep Python names)."""
    return {"urls": {endpoint: f"https://{digest('ingress', name, endpoint, length=8)}-{ACCOUNT_HOST}"
                               ".snowflakecomputing.app" for endpoint in PUBLIC_ENDPOINTS}}


def _stage_files(name, inputs):
    return {"location": f"@{inputs.get('stage', '')}/{inputs.get('folder', '')}"}


def _database(name, inputs):
    return {"fullyQualifiedName": _quoted(inputs.get("name", name))}


def _schema(name, inputs):
    return {"fullyQualifiedName": _quoted(inputs.get("database", ""), inputs.get("name", name))}


COMPUTED = {
    "snowflake:index/accountRole:AccountRole": _account_object,
    "snowflake:index/computePool:ComputePool": _account_object,
    "snowflake:index/warehouse:Warehouse": _account_object,
    "snowflake:index/externalAccessIntegration:ExternalAccessIntegration": _account_object,
    "snowflake:index/database:Database": _database,
    "snowflake:index/schema:Schema": _schema,
    "snowflake:index/imageRepository:ImageRepository": _repository,
    "snowflake:index/stageInternal:StageInternal": _schema_object,
    "snowflake:index/networkRule:NetworkRule": _schema_object,
    "snowflake:index/secretWithGenericString:SecretWithGenericString": _schema_object,
    "snowflake:index/streamlit:Streamlit": _schema_object,
    "snowflake:index/service:Service": _service,
    "pulumi-python:dynamic/spcs:ServiceEndpoints": _endpoints,
    "pulumi-python:dynamic/spcs:StageFiles": _stage_files,
}
