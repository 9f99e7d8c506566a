"""The dynamic resources' SQL against a fake cursor: every statement, in order, reverts included; and the
provider pickles with no credentials in it."""

from __future__ import annotations

import base64

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.gke.cloud_build_image import pickled_by_value
from components.spcs.readiness import ServiceEndpointsProvider
from components.spcs.sql import SnowflakeSqlProvider, StageFilesProvider
from components.spcs_app.sql_provider import AppVersionProvider, ReleaseDirectiveProvider
from tests.fake_snowflake import FakeCursor

CONNECTION = {"account": "MYORG-PROVIDER", "user": "RAY_DEPLOYER", "role": "RAY_PROVIDER_ROLE"}
PKG = "RAY_APP_PKG"
LOCATION = "@RAY_APP_PKG.APP_SRC.APP_STAGE/v-abc"


def provider(cls, cursor: FakeCursor):
    return cls(connect=lambda: cursor)


def test_files_are_put_from_memory_into_a_folder_per_digest_and_removed_on_delete():
    cursor = FakeCursor()
    props = {"connection": CONNECTION, "stage": "RAY_APP_PKG.APP_SRC.APP_STAGE", "folder": "v-abc",
             "files": {"manifest.yml": "manifest_version: 1\n", "specs/head-cpu_x64_m.yaml": "spec: {}\n"}}
    result = provider(StageFilesProvider, cursor).create(props)
    assert cursor.statements == [
        "PUT 'file:///manifest.yml' '@RAY_APP_PKG.APP_SRC.APP_STAGE/v-abc' AUTO_COMPRESS = FALSE OVERWRITE = TRUE",
        "PUT 'file:///head-cpu_x64_m.yaml' '@RAY_APP_PKG.APP_SRC.APP_STAGE/v-abc/specs' AUTO_COMPRESS = FALSE "
        "OVERWRITE = TRUE",
    ]
    assert cursor.streams == [b"manifest_version: 1\n", b"spec: {}\n"]
    assert result.id == result.outs["location"] == LOCATION
    provider(StageFilesProvider, cursor).delete(result.id, result.outs)
    assert cursor.statements[-1] == "REMOVE @RAY_APP_PKG.APP_SRC.APP_STAGE/v-abc/"


def test_files_upload_again_only_when_their_digest_changes():
    p = StageFilesProvider()
    old = {"stage": "S", "folder": "v-abc", "files": {"a": "1"}}
    assert not p.diff("id", old, dict(old)).changes
    changed = p.diff("id", old, {**old, "folder": "v-def", "files": {"a": "2"}})
    assert changed.changes and changed.replaces == ["folder"] and changed.delete_before_replace is False


def test_first_version_is_registered_added_to_the_default_channel_then_patch_read_back():
    cursor = FakeCursor({"SHOW VERSIONS": [[], [{"version": "V1", "patch": 0}]]})
    props = {"connection": CONNECTION, "package": PKG, "version": "V1", "label": "Ray's app", "location": LOCATION}
    result = provider(AppVersionProvider, cursor).create(props)
    assert cursor.statements == [
        f"SHOW VERSIONS LIKE 'V1' IN APPLICATION PACKAGE {PKG}",
        f"ALTER APPLICATION PACKAGE {PKG} REGISTER VERSION V1 USING '{LOCATION}' LABEL = 'Ray''s app'",
        f"ALTER APPLICATION PACKAGE {PKG} MODIFY RELEASE CHANNEL DEFAULT ADD VERSION V1",
        f"SHOW VERSIONS LIKE 'V1' IN APPLICATION PACKAGE {PKG}",
    ]
    assert result.outs["patch"] == 0 and result.id == f"{PKG}/V1"


def test_changed_files_add_a_patch_to_the_existing_version():
    existing = [{"version": "V1", "patch": 0}, {"version": "V1", "patch": 1}]
    cursor = FakeCursor({"SHOW VERSIONS": [existing, [*existing, {"version": "V1", "patch": 2}]]})
    news = {"connection": CONNECTION, "package": PKG, "version": "V1", "label": "L", "location": LOCATION + "2"}
    p = provider(AppVersionProvider, cursor)
    diff = p.diff("id", {**news, "location": LOCATION}, news)
    assert diff.changes and diff.replaces == []  # a patch, not a new version
    assert p.update("id", {}, news).outs["patch"] == 2
    assert cursor.statements[1] == (f"ALTER APPLICATION PACKAGE {PKG} ADD PATCH FOR VERSION V1 "
                                    f"USING '{LOCATION}2' LABEL = 'L'")
    assert len(cursor.statements) == 3


def test_a_new_version_name_replaces_and_the_old_one_is_dropped_once_not_released():
    p = AppVersionProvider()
    assert p.diff("id", {"package": PKG, "version": "V1"}, {"package": PKG, "version": "V2"}).replaces == ["version"]
    cursor = FakeCursor({"SHOW RELEASE DIRECTIVES": [[{"name": "DEFAULT", "version": "V2", "patch": 0}]]})
    provider(AppVersionProvider, cursor).delete("id", {"connection": CONNECTION, "package": PKG, "version": "V1"})
    assert cursor.statements == [f"SHOW RELEASE DIRECTIVES IN APPLICATION PACKAGE {PKG}",
                                 f"ALTER APPLICATION PACKAGE {PKG} MODIFY RELEASE CHANNEL DEFAULT DROP VERSION V1",
                                 f"ALTER APPLICATION PACKAGE {PKG} DEREGISTER VERSION V1"]


def test_the_released_version_is_kept_on_delete():
    cursor = FakeCursor({"SHOW RELEASE DIRECTIVES": [[{"name": "DEFAULT", "version": "V1", "patch": 3}]]})
    provider(AppVersionProvider, cursor).delete("id", {"connection": CONNECTION, "package": PKG, "version": "V1"})
    assert cursor.statements == [f"SHOW RELEASE DIRECTIVES IN APPLICATION PACKAGE {PKG}"]


def test_version_without_patch_after_adding_is_an_error():
    cursor = FakeCursor({"SHOW VERSIONS": [[], []]})
    with pytest.raises(RuntimeError, match="version V1 not found after adding it"):
        provider(AppVersionProvider, cursor).create({"connection": CONNECTION, "package": PKG, "version": "V1",
                                                     "label": "L", "location": LOCATION})


def test_release_directive_set_updated_in_place_and_nothing_reverted():
    cursor = FakeCursor()
    p = provider(ReleaseDirectiveProvider, cursor)
    props = {"connection": CONNECTION, "package": PKG, "version": "V1", "patch": 0}
    p.create(props)
    diff = p.diff("id", props, {**props, "patch": 1})
    assert diff.changes and diff.replaces == []
    p.update("id", props, {**props, "patch": 1})
    p.delete("id", props)
    assert cursor.statements == [
        f"ALTER APPLICATION PACKAGE {PKG} MODIFY RELEASE CHANNEL DEFAULT SET DEFAULT RELEASE DIRECTIVE VERSION = V1 "
        "PATCH = 0",
        f"ALTER APPLICATION PACKAGE {PKG} MODIFY RELEASE CHANNEL DEFAULT SET DEFAULT RELEASE DIRECTIVE VERSION = V1 "
        "PATCH = 1",
    ]


def test_no_key_in_the_environment_is_a_clear_error(monkeypatch):
    for name in ("SNOWFLAKE_PRIVATE_KEY", "SNOWFLAKE_PRIVATE_KEY_PATH"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="export SNOWFLAKE_PRIVATE_KEY"):
        AppVersionProvider().cursor(CONNECTION)


@pytest.mark.parametrize("cls", [StageFilesProvider, AppVersionProvider, ReleaseDirectiveProvider,
                                 ServiceEndpointsProvider])
def test_providers_pickle_by_value_without_credentials(cls, monkeypatch):
    monkeypatch.setenv("SNOWFLAKE_PRIVATE_KEY", "-----BEGIN PRIVATE KEY-----\nSECRETKEYBODY\n-----END PRIVATE KEY-----")
    with pickled_by_value(cls), pickled_by_value(SnowflakeSqlProvider):
        blob = serialize_provider(cls())
    assert "SECRETKEYBODY" not in blob  # the key is read when a method runs, never stored
    assert "components.spcs_app" not in base64.b64decode(blob).decode("latin-1")  # by value: no repo import needed


def test_one_release_model_channels_everywhere():
    """Packages are created with release channels, so no statement may use the legacy package-level directive
    or ADD VERSION (which address packages without channels)."""
    cursor = FakeCursor({"SHOW VERSIONS": [[], [{"version": "V1", "patch": 0}]],
                         "SHOW RELEASE DIRECTIVES": [[]]})
    props = {"connection": CONNECTION, "package": PKG, "version": "V1", "label": "L", "location": LOCATION}
    provider(AppVersionProvider, cursor).create(props)
    provider(ReleaseDirectiveProvider, cursor).create({**props, "patch": 0})
    provider(AppVersionProvider, cursor).delete("id", props)
    legacy = [s for s in cursor.statements if s.startswith(f"ALTER APPLICATION PACKAGE {PKG} SET DEFAULT RELEASE")
              or s.startswith(f"ALTER APPLICATION PACKAGE {PKG} ADD VERSION")
              or s.startswith(f"ALTER APPLICATION PACKAGE {PKG} DROP VERSION")]
    assert legacy == [] and len(cursor.statements) == 8


def test_an_external_package_releases_only_a_version_the_security_scan_approved():
    """SHOW VERSIONS' review_status: NOT_REVIEWED / IN_PROGRESS / APPROVED / REJECTED / MANUAL_REVIEW."""
    props = {"connection": CONNECTION, "package": PKG, "version": "V1", "patch": 1, "distribution": "EXTERNAL"}
    row = {"version": "V1", "patch": 1, "label": "L", "review_status": "IN_PROGRESS"}
    cursor = FakeCursor({"SHOW VERSIONS": [[{"version": "V1", "patch": 0, "review_status": "APPROVED"}, row]]})
    with pytest.raises(RuntimeError) as err:
        provider(ReleaseDirectiveProvider, cursor).create(props)
    assert str(err.value).startswith("RAY_APP_PKG version V1 patch 1: security review IN_PROGRESS (allowed: APPROVED;")
    assert not any("RELEASE DIRECTIVE" in s for s in cursor.statements)  # nothing released
    cursor = FakeCursor({"SHOW VERSIONS": [[{**row, "review_status": "APPROVED"}]]})
    provider(ReleaseDirectiveProvider, cursor).create(props)
    assert cursor.statements[-1] == (f"ALTER APPLICATION PACKAGE {PKG} MODIFY RELEASE CHANNEL DEFAULT SET DEFAULT "
                                     "RELEASE DIRECTIVE VERSION = V1 PATCH = 1")
