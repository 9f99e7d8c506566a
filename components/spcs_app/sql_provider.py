"""Dynamic resources for what pulumi-snowflake lacks: uploading the app's files into the package's stage,
adding a version or patch, and setting the release directive (snowflake-connector-python).

One release model, release channels (on by default for new packages, and the package is created with them
explicitly): a version is registered, added to the DEFAULT channel, and released by that channel's default
release directive (https://docs.snowflake.com/en/sql-reference/sql/alter-application-package-release-channel).
The legacy package-level `SET DEFAULT RELEASE DIRECTIVE` is never used.

Connection settings that are not secret (account, user, role) are inputs; the key is read at run time inside
the methods from SNOWFLAKE_PRIVATE_KEY (PEM) or SNOWFLAKE_PRIVATE_KEY_PATH (+ SNOWFLAKE_PRIVATE_KEY_PASSPHRASE),
so nothing secret is pickled into the state. Tests inject `connect` (a fake cursor) instead.
"""

from __future__ import annotations

import io
from typing import Any

from pulumi import Input, Output, ResourceOptions
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.dynamic import pickled_by_value

RELEASE_CHANNEL = "DEFAULT"  # what every consumer with access to the listing installs


class SnowflakeSqlProvider(ResourceProvider):
    """Shared plumbing: a cursor per call, closed afterwards."""

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


class AppStageFilesProvider(SnowflakeSqlProvider):
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
        # The version made from these files keeps its own copy; the upload folder is only a staging area.
        self.rows(self.cursor(props["connection"]), f"REMOVE @{props['stage']}/{props['folder']}/")


class AppVersionProvider(SnowflakeSqlProvider):
    """REGISTER VERSION and add it to the release channel the first time, ADD PATCH FOR VERSION when the files
    change; `patch` is read back."""

    def _add(self, props: dict[str, Any]) -> dict[str, Any]:
        cur = self.cursor(props["connection"])
        package, version = props["package"], props["version"]
        show = f"SHOW VERSIONS LIKE '{version}' IN APPLICATION PACKAGE {package}"
        exists = bool(self.rows(cur, show))
        label = props["label"].replace("'", "''")
        if exists:
            self.rows(cur, f"ALTER APPLICATION PACKAGE {package} ADD PATCH FOR VERSION {version} "
                           f"USING '{props['location']}' LABEL = '{label}'")
        else:
            self.rows(cur, f"ALTER APPLICATION PACKAGE {package} REGISTER VERSION {version} "
                           f"USING '{props['location']}' LABEL = '{label}'")
            self.rows(cur, f"ALTER APPLICATION PACKAGE {package} MODIFY RELEASE CHANNEL {RELEASE_CHANNEL} "
                           f"ADD VERSION {version}")
        patches = [int(r["patch"]) for r in self.rows(cur, show) if str(r.get("version", "")).upper() == version.upper()]
        if not patches:
            raise RuntimeError(f"{package}: version {version} not found after adding it")
        return {**props, "patch": max(patches)}

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._add(props)
        return CreateResult(id_=f"{props['package']}/{props['version']}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("package", "version") if olds.get(k) != news.get(k)]
        changed = replaces + [k for k in ("location", "label") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._add(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Drop the version unless a release directive still serves it to consumers (then it must stay)."""
        cur = self.cursor(props["connection"])
        package, version = props["package"], props["version"]
        directives = self.rows(cur, f"SHOW RELEASE DIRECTIVES IN APPLICATION PACKAGE {package}")
        if any(str(d.get("version", "")).upper() == version.upper() for d in directives):
            return
        self.rows(cur, f"ALTER APPLICATION PACKAGE {package} MODIFY RELEASE CHANNEL {RELEASE_CHANNEL} "
                       f"DROP VERSION {version}")
        self.rows(cur, f"ALTER APPLICATION PACKAGE {package} DEREGISTER VERSION {version}")


class ReleaseDirectiveProvider(SnowflakeSqlProvider):
    """The release channel's default release directive: what consumers install and upgrade to."""

    def _set(self, props: dict[str, Any]) -> None:
        self.rows(self.cursor(props["connection"]),
                  f"ALTER APPLICATION PACKAGE {props['package']} MODIFY RELEASE CHANNEL {RELEASE_CHANNEL} "
                  f"SET DEFAULT RELEASE DIRECTIVE VERSION = {props['version']} PATCH = {int(props['patch'])}")

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._set(props)
        return CreateResult(id_=f"{props['package']}/default", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("version", "patch") if olds.get(k) != news.get(k)]
        replaces = ["package"] if olds.get("package") != news.get("package") else []
        return DiffResult(changes=bool(changed or replaces), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._set(news)
        return UpdateResult(outs=news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Nothing to revert: installed consumers keep following the package's last directive."""
        return None


def _register(resource: Resource, provider: SnowflakeSqlProvider, name: str, props: dict[str, Any],
              opts: ResourceOptions | None) -> None:
    with pickled_by_value(type(provider)), pickled_by_value(SnowflakeSqlProvider):
        Resource.__init__(resource, provider, name, props, opts)


class AppStageFiles(Resource, module="spcs_app", name="AppStageFiles"):
    """Outputs `location`: @PKG.SCHEMA.STAGE/<folder>, what ADD VERSION/PATCH uses."""

    location: Output[str]

    def __init__(self, name: str, props: dict[str, Input[Any]], opts: ResourceOptions | None = None,
                 provider: AppStageFilesProvider | None = None):
        _register(self, provider or AppStageFilesProvider(), name, {**props, "location": None}, opts)


class AppVersion(Resource, module="spcs_app", name="AppVersion"):
    """Outputs `patch`: the patch number the last upload became."""

    patch: Output[int]

    def __init__(self, name: str, props: dict[str, Input[Any]], opts: ResourceOptions | None = None,
                 provider: AppVersionProvider | None = None):
        _register(self, provider or AppVersionProvider(), name, {**props, "patch": None}, opts)


class ReleaseDirective(Resource, module="spcs_app", name="ReleaseDirective"):
    def __init__(self, name: str, props: dict[str, Input[Any]], opts: ResourceOptions | None = None,
                 provider: ReleaseDirectiveProvider | None = None):
        _register(self, provider or ReleaseDirectiveProvider(), name, props, opts)
