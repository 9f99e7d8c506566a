"""The status page: a Streamlit-in-Snowflake app listing the cluster's services, their status and URLs.

The app's source (apps/spcs-status) is uploaded from memory by StageFiles (the provider cannot upload files)
into a folder named by the source's digest, so an edited page is a new upload and an update.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_snowflake as snowflake

from components.spcs.sql import StageFiles

MAIN_FILE = "streamlit_app.py"


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@dataclass(frozen=True)
class SpcsStatusAppArgs:
    name: str  # the Streamlit object's name
    source: Path  # streamlit_app.py
    database: pulumi.Input[str]
    schema: pulumi.Input[str]
    stage: str  # fully qualified, e.g. RAY_DB.RAY_SCHEMA.RAY_APPS
    warehouse: pulumi.Input[str]
    provider: snowflake.Provider
    connection: dict[str, str]  # account, user, role for the upload; the key comes from the environment
    after: list[pulumi.Resource] = field(default_factory=list)  # what creates the stage

    def __post_init__(self) -> None:
        if self.source.name != MAIN_FILE:
            raise ValueError(f"source {self.source} (allowed: a file named {MAIN_FILE})")


class SpcsStatusApp(pulumi.ComponentResource):
    def __init__(self, name: str, args: SpcsStatusAppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:spcs:SpcsStatusApp", name, None, opts)
        folder = f"status-{source_digest(args.source)}"
        upload = StageFiles(f"{name}-upload", {"connection": args.connection, "stage": args.stage, "folder": folder,
                                               "files": {MAIN_FILE: args.source.read_text()}},
                            opts=pulumi.ResourceOptions(parent=self, depends_on=args.after))
        snowflake.Streamlit(
            f"{name}-streamlit", name=args.name, database=args.database, schema=args.schema, stage=args.stage,
            directory_location=folder, main_file=MAIN_FILE, query_warehouse=args.warehouse,
            title="Ray on SPCS: status", comment="ray-platform: services, status, endpoints, pools",
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[upload]),
        )
        self.register_outputs({})
