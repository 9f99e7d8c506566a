"""Why Tune via --working-dir failed on the first job of a fresh test cluster, and what prevents it.

Ray 2.60's WorkingDirPlugin.create unpacks a job's working_dir with `overwrite=True`: a second unpack of the
same package removes the directory and writes a new one at the same path. A process already running in the
old one (the job's driver: Ray starts it there) is left with a deleted cwd, and the first `os.getcwd()`,
such as the one in `os.path.relpath` in Tune's `_list_at_fs_path`, raises FileNotFoundError. Every node of
a real cluster has its own runtime-env agent and temp dir; raylets on one machine that shared a temp dir
unpacked the package into the same place, each agent once. LocalCluster therefore gives each node its own.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from ray._private.runtime_env.context import RuntimeEnvContext
from ray._private.runtime_env.working_dir import WorkingDirPlugin

URI = "gcs://_ray_pkg_0123456789abcdef.zip"


class PackageStore:
    """The part of Ray's GCS client the plugin uses: the uploaded package's bytes."""

    def __init__(self) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("autotune.json", "{}")
        self.package = buffer.getvalue()

    async def async_internal_kv_get(self, key: bytes, namespace=None, timeout=None) -> bytes:
        return self.package


def unpack(plugin: WorkingDirPlugin) -> Path:
    # A loop of its own, never installed as the thread's: asyncio.run would leave the main thread without an
    # event loop, and every Pulumi-mocks test after this one fails with "There is no current event loop".
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(plugin.create(URI, {"working_dir": URI}, RuntimeEnvContext()))
    finally:
        loop.close()
    return plugin._get_directory_on_node(URI)


def test_a_second_agent_unpacking_into_the_same_temp_dir_pulls_the_cwd_from_under_the_driver(tmp_path: Path) -> None:
    store = PackageStore()
    first_node, second_node = WorkingDirPlugin(str(tmp_path), store), WorkingDirPlugin(str(tmp_path), store)
    working_dir = unpack(first_node)
    driver = subprocess.Popen(  # waits in the working dir, then does what Tune's _list_at_fs_path does
        [sys.executable, "-c", "import os, sys; sys.stdin.readline(); print(os.path.relpath('a', start='b'))"],
        cwd=working_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    inode = os.stat(working_dir).st_ino
    assert unpack(second_node) == working_dir  # same path, shared temp dir
    assert os.stat(working_dir).st_ino != inode  # but a new directory: the driver's cwd is gone
    stdout, stderr = driver.communicate("\n", timeout=60)
    assert driver.returncode != 0 and "FileNotFoundError" in stderr

    inode = os.stat(working_dir).st_ino
    separate = WorkingDirPlugin(str(tmp_path / "other-node"), store)  # a temp dir of its own, as LocalCluster gives
    assert unpack(separate) != working_dir and os.stat(working_dir).st_ino == inode  # leaves the other one alone
