"""`python -m stacks.pulumi_cli DIR`: print the Pulumi CLI to run, installing it into DIR when none is on PATH.

bin/deploy uses this so a fresh machine needs no manual Pulumi install. The version is the SDK pinned in
requirements.txt (`pulumi==X`), installed by the SDK's own `PulumiCommand.install` (Pulumi's official
installer, get.pulumi.com/install.sh, as the Automation API uses it). It installs into a staging folder
next to DIR and renames it into place only once the CLI answers `pulumi version`, so a failed or interrupted
install leaves nothing half-installed; a later run finds DIR and reuses it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
from pathlib import Path

from pulumi.automation import PulumiCommand
from semver import VersionInfo

INSTALLER = "https://get.pulumi.com/install.sh"  # what PulumiCommand.install downloads (pulumi/automation/_cmd.py)
MANUAL = "or install the Pulumi CLI yourself: https://www.pulumi.com/docs/iac/download-install/"


class InstallError(Exception):
    pass


def pinned_version(requirements: Path) -> VersionInfo:
    found = re.search(r"^pulumi==(\S+)", requirements.read_text(), re.MULTILINE)
    if not found:
        raise InstallError(f"{requirements}: no `pulumi==VERSION` line to pick the CLI version from")
    return VersionInfo.parse(found.group(1))


def installed(root: Path, version: VersionInfo) -> str | None:
    """The CLI under root when it runs and is at least `version`."""
    try:
        return PulumiCommand(root=str(root), version=version).command
    except Exception:  # noqa: BLE001 (missing, broken or too old: all mean "install it")
        return None


def install(root: Path, version: VersionInfo) -> str:
    """Install the CLI into root (atomically: staged, then renamed) and return its path."""
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-partial-", dir=root.parent))
    try:
        PulumiCommand.install(root=str(staging), version=version)
        shutil.rmtree(root, ignore_errors=True)  # a broken earlier install
        staging.rename(root)
    except urllib.error.URLError as exc:
        raise InstallError(f"could not download the Pulumi installer ({INSTALLER}): {getattr(exc, 'reason', exc)}; "
                           f"check the network or proxy (https_proxy), {MANUAL}") from None
    except subprocess.CalledProcessError as exc:
        output = (exc.output or b"").decode(errors="replace").strip().splitlines()
        raise InstallError(f"the Pulumi installer failed (exit {exc.returncode}: {output[-1] if output else 'no output'}); "
                           f"{MANUAL}") from None
    except Exception as exc:  # noqa: BLE001 (e.g. the installed CLI does not run or reports another version)
        raise InstallError(f"the Pulumi CLI {version} did not install ({type(exc).__name__}: {exc}); {MANUAL}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(root / "bin" / "pulumi")


def ensure(root: Path, requirements: Path) -> str:
    on_path = shutil.which("pulumi")
    if on_path:
        return on_path
    version = pinned_version(requirements)
    found = installed(root, version)
    if found:
        return found
    print(f"Installing the Pulumi CLI {version} into {root} (no `pulumi` on PATH) ...", file=sys.stderr)
    return install(root, version)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m stacks.pulumi_cli INSTALL_DIR", file=sys.stderr)
        return 2
    try:
        print(ensure(Path(args[0]), Path("requirements.txt")))
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
