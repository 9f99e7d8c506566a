"""Secret fingerprints in preview snapshots do not depend on where the repository is checked out: a dynamic
provider's pickled code names its files by absolute path."""

from __future__ import annotations

import base64
import pickle
from pathlib import Path

from stacks import offline


def pickled_provider(project: Path) -> str:
    return base64.b64encode(pickle.dumps((f"{project}/components/gke/cloud_build_image.py", "code"))).decode()


def test_a_pickled_provider_fingerprints_alike_from_any_checkout(monkeypatch):
    prints = []
    for project in (Path("/work/wt-1"), Path("/home/runner/work/ray-platform/ray-platform")):
        monkeypatch.setattr(offline, "PROJECT_DIR", project)
        prints.append(offline.fingerprint(pickled_provider(project)))
    assert prints[0] == prints[1]
    changed = base64.b64encode(pickle.dumps((f"{project}/components/gke/cloud_build_image.py", "new code"))).decode()
    assert offline.fingerprint(changed) != prints[1]  # a changed provider still shows as changed
    assert offline.fingerprint("s3cret") != offline.fingerprint("s3cret2")
