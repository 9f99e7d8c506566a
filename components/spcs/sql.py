"""SQL through snowflake-connector-python for what pulumi-snowflake lacks, as small dynamic resources:
files uploaded into a stage from memory (`StageFiles`), and the shared plumbing of every such provider.

Connection settings that are not secret (account, user, role) are inputs; the key is read at run time inside
the methods from SNOWFLAKE_PRIVATE_KEY (PEM) or SNOWFLAKE_PRIVATE_KEY_PATH (+ SNOWFLAKE_PRIVATE_KEY_PASSPHRASE),
so nothing secret is pickled into the state. Tests inject `connect` (a fake cursor) instead.
"""

from __future__ import annotations

import io
from typing import Any

from pulumi import Input, Output, ResourceOptions
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from components.dynamic import pickled_by_value


class SnowflakeSqlProvider(ResourceProvider):
    """Shared plumbing: a cursor per call, rows as dicts with lower-case column names."""

    KEY_ENV, KEY_PATH_ENV, PASSPHRASE_ENV = "SNOWFLAKE_PRIVATE_KEY", "SNOWFLAKE_PRIVATE_KEY_PATH", \
        "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"

    def __init__(self, connect: Any = None):
        self._connect = connect  # tests only: () -> cursor

    def cursor(self, connection: dict[str, Any]) -> Any:
        if self._connect is not None:
            return self._connect()
        import os

        import snowflake.connector
        from cryptography.hazmat.primitives import serialization

        pem = os.environ.get(self.KEY_ENV)
        if pem is None and os.environ.get(self.KEY_PATH_ENV):
            with open(os.environ[self.KEY_PATH_ENV], "rb") as handle:
                pem = handle.read().decode()
        if pem is None:
            raise RuntimeError(f"no Snowflake key: export {self.KEY_ENV} (PEM) or {self.KEY_PATH_ENV} for `pulumi up`")
        passphrase = os.environ.get(self.PASSPHRASE_ENV)
        key = serialization.load_pem_private_key(pem.encode(), password=passphrase.encode() if passphrase else None)
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        conn = snowflake.connector.connect(account=connection["account"], user=connection["user"],
                                           role=connection["role"], private_key=der)
        return conn.cursor()

    @staticmethod
    def rows(cur: Any, statement: str, **kwargs: Any) -> list[dict[str, Any]]:
        cur.execute(statement, **kwargs)
        names = [d[0].lower() for d in (cur.description or [])]
        return [dict(zip(names, row, strict=False)) for row in (cur.fetchall() or [])]

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


def register(resource: Resource, provider: SnowflakeSqlProvider, name: str, props: dict[str, Any],
             opts: ResourceOptions | None) -> None:
    """Registers a dynamic resource with its provider pickled by value (no repository import at run time)."""
    with pickled_by_value(type(provider)), pickled_by_value(SnowflakeSqlProvider):
        Resource.__init__(resource, provider, name, props, opts)


class StageFilesProvider(SnowflakeSqlProvider):
    """PUT each file into @stage/<folder>/ from memory; a new folder (digest) for new content; REMOVE on delete."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        cur = self.cursor(props["connection"])
        for path, content in sorted(props["files"].items()):
            directory, _, name = path.rpartition("/")
            target = f"@{props['stage']}/{props['folder']}" + (f"/{directory}" if directory else "")
            self.rows(cur, f"PUT 'file:///{name}' '{target}' AUTO_COMPRESS = FALSE OVERWRITE = TRUE",
                      file_stream=io.BytesIO(content.encode()))
        location = f"@{props['stage']}/{props['folder']}"
        return CreateResult(id_=location, outs={**props, "location": location})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("stage", "folder") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        # What was made from these files (an app version, a Streamlit) keeps or no longer needs them.
        self.rows(self.cursor(props["connection"]), f"REMOVE @{props['stage']}/{props['folder']}/")


class StageFiles(Resource, module="spcs", name="StageFiles"):
    """Inputs: connection, stage (DB.SCHEMA.STAGE), folder (name it by the files' digest), files (path ->
    text). Outputs `location`: @DB.SCHEMA.STAGE/<folder>."""

    location: Output[str]

    def __init__(self, name: str, props: dict[str, Input[Any]], opts: ResourceOptions | None = None,
                 provider: StageFilesProvider | None = None):
        register(self, provider or StageFilesProvider(), name, {**props, "location": None}, opts)
