"""Dynamic resources for what pulumi-snowflake lacks: adding a version or patch of the app and setting the
release directive (snowflake-connector-python, plumbing in components/spcs/sql.py; the app's files are
uploaded with its StageFiles).

One release model, release channels (on by default for new packages, and the package is created with them
explicitly): a version is registered, added to the DEFAULT channel, and released by that channel's default
release directive (https://docs.snowflake.com/en/sql-reference/sql/alter-application-package-release-channel).
The legacy package-level `SET DEFAULT RELEASE DIRECTIVE` is never used.

"""

from __future__ import annotations

from typing import Any

from pulumi import Input, Output, ResourceOptions
from pulumi.dynamic import CreateResult, DiffResult, Resource, UpdateResult

from components.spcs.sql import SnowflakeSqlProvider, register

RELEASE_CHANNEL = "DEFAULT"  # what every consumer with access to the listing installs
# EXTERNAL distribution: Snowflake scans every new version/patch, and only an APPROVED one can be released
# (https://docs.snowflake.com/en/developer-guide/native-apps/security-run-scan).
APPROVED = "APPROVED"


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
        cur = self.cursor(props["connection"])
        if props.get("distribution") == "EXTERNAL":
            versions = self.rows(cur, f"SHOW VERSIONS LIKE '{props['version']}' IN APPLICATION PACKAGE {props['package']}")
            status = next((str(v.get("review_status")) for v in versions if int(v.get("patch", -1)) == int(props["patch"])),
                          "not found")
            if status != APPROVED:
                raise RuntimeError(
                    f"{props['package']} version {props['version']} patch {int(props['patch'])}: security review "
                    f"{status} (allowed: {APPROVED}; the scan of an EXTERNAL package takes minutes, a manual review up "
                    "to days: run `pulumi up` again later, or read SHOW VERSIONS for the reason of a REJECTED one)")
        self.rows(cur,
                  f"ALTER APPLICATION PACKAGE {props['package']} MODIFY RELEASE CHANNEL {RELEASE_CHANNEL} "
                  f"SET DEFAULT RELEASE DIRECTIVE VERSION = {props['version']} PATCH = {int(props['patch'])}")

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._set(props)
        return CreateResult(id_=f"{props['package']}/default", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("version", "patch", "distribution") if olds.get(k) != news.get(k)]
        replaces = ["package"] if olds.get("package") != news.get("package") else []
        return DiffResult(changes=bool(changed or replaces), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._set(news)
        return UpdateResult(outs=news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Nothing to revert: installed consumers keep following the package's last directive."""
        return None


class AppVersion(Resource, module="spcs_app", name="AppVersion"):
    """Outputs `patch`: the patch number the last upload became."""

    patch: Output[int]

    def __init__(self, name: str, props: dict[str, Input[Any]], opts: ResourceOptions | None = None,
                 provider: AppVersionProvider | None = None):
        register(self, provider or AppVersionProvider(), name, {**props, "patch": None}, opts)


class ReleaseDirective(Resource, module="spcs_app", name="ReleaseDirective"):
    def __init__(self, name: str, props: dict[str, Input[Any]], opts: ResourceOptions | None = None,
                 provider: ReleaseDirectiveProvider | None = None):
        register(self, provider or ReleaseDirectiveProvider(), name, props, opts)
