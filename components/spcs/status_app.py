"""The status page: a Streamlit-in-Snowflake app listing the cluster's services, their status and URLs.

The app's source (apps/spcs-status) is uploaded with `PUT` through `snowflake.Execute` (the provider cannot
upload files) into a folder named by the source's digest, so an edited page is a new upload and an update.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_snowflake as snowflake

MAIN_FILE = "streamlit_app.py"


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@dataclass(frozen=True)
class SpcsStatusAppArgs:
    name: str  # the Streamlit object's name
    source: Path  # absolute path of streamlit_app.py (PUT needs an absolute path)
    database: pulumi.Input[str]
    schema: pulumi.Input[str]
    stage: str  # fully qualified, e.g. RAY_DB.RAY_SCHEMA.RAY_APPS
    warehouse: pulumi.Input[str]
    provider: snowflake.Provider

    def __post_init__(self) -> None:
        if self.source.name != MAIN_FILE:
            raise ValueError(f"source {self.source} (allowed: a file named {MAIN_FILE})")


class SpcsStatusApp(pulumi.ComponentResource):
    def __init__(self, name: str, args: SpcsStatusAppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:spcs:SpcsStatusApp", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        folder = f"status-{source_digest(args.source)}"
        upload = snowflake.Execute(
            f"{name}-upload",
            execute=f"PUT 'file://{args.source}' @{args.stage}/{folder}/ AUTO_COMPRESS=FALSE OVERWRITE=TRUE",
            revert=f"REMOVE @{args.stage}/{folder}/",
            opts=child,
        )
        snowflake.Streamlit(
            f"{name}-streamlit", name=args.name, database=args.database, schema=args.schema, stage=args.stage,
            directory_location=folder, main_file=MAIN_FILE, query_warehouse=args.warehouse,
            title="Ray on SPCS: status", comment="ray-platform: services, status, endpoints, pools",
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[upload]),
        )
        self.register_outputs({})
