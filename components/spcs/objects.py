"""Where the cluster's things live: database, schema, warehouse, image repository and stages.

Created by the owner role's provider. The database, schema, image repository and stages hold state
(artifacts, logs, images) and are protected and retained on delete.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_snowflake as snowflake


@dataclass(frozen=True)
class SpcsObjectsArgs:
    database: str
    schema: str
    warehouse: str
    warehouse_size: str
    warehouse_auto_suspend_s: int
    image_repository: str
    stages: dict[str, str]  # role ("artifacts", "logs", ...) -> stage name
    provider: snowflake.Provider

    def __post_init__(self) -> None:
        if self.warehouse_auto_suspend_s < 60:
            raise ValueError(f"warehouse_auto_suspend_s {self.warehouse_auto_suspend_s} (allowed: >= 60)")


class SpcsObjects(pulumi.ComponentResource):
    database: pulumi.Output[str]
    schema: pulumi.Output[str]
    warehouse: pulumi.Output[str]
    repository_url: pulumi.Output[str]  # <org>-<account>.registry.snowflakecomputing.com/db/schema/repo
    stages: dict[str, pulumi.Output[str]]  # fully qualified names

    def __init__(self, name: str, args: SpcsObjectsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:spcs:SpcsObjects", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        kept = pulumi.ResourceOptions(parent=self, provider=args.provider, protect=True, retain_on_delete=True)
        database = snowflake.Database(f"{name}-database", name=args.database, opts=kept)
        schema = snowflake.Schema(f"{name}-schema", database=database.name, name=args.schema, opts=kept)
        warehouse = snowflake.Warehouse(
            f"{name}-warehouse", name=args.warehouse, warehouse_size=args.warehouse_size,
            auto_suspend=args.warehouse_auto_suspend_s, auto_resume="true", initially_suspended=True, opts=child)
        repository = snowflake.ImageRepository(
            f"{name}-images", database=database.name, schema=schema.name, name=args.image_repository, opts=kept)
        self.database, self.schema, self.warehouse = database.name, schema.name, warehouse.name
        self.repository_url = repository.show_outputs.apply(lambda rows: rows[0].repository_url)
        self.stages = {}
        for role, stage_name in sorted(args.stages.items()):
            stage = snowflake.StageInternal(
                f"{name}-stage-{role}", database=database.name, schema=schema.name, name=stage_name,
                directory=snowflake.StageInternalDirectoryArgs(enable=True),
                encryption=snowflake.StageInternalEncryptionArgs(snowflake_sse=snowflake.StageInternalEncryptionSnowflakeSseArgs()),
                comment=f"ray-platform: {role}", opts=kept)
            self.stages[role] = stage.fully_qualified_name
        self.register_outputs({"database": self.database, "schema": self.schema, "warehouse": self.warehouse,
                               "repository_url": self.repository_url, "stages": self.stages})
