"""`python -m stacks.preview gcpvm --json` against its snapshot: the whole stack, offline.

Regenerate after an intended change: UPDATE_SNAPSHOTS=1 python -m pytest tests/gcpvm/test_snapshot.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from gcpvm_testing import ROOT

SNAPSHOT = ROOT / "tests" / "snapshots" / "gcpvm.json"


def test_gcpvm_json_matches_the_snapshot():
    result = subprocess.run([sys.executable, "-m", "stacks.preview", "gcpvm", "--json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(document, indent=2) + "\n")
    assert document == json.loads(SNAPSHOT.read_text())


def test_graph_draws_the_components():
    result = subprocess.run([sys.executable, "-m", "stacks.preview", "gcpvm", "--graph"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "graph LR"
    assert any("subgraph" in line and "HeadNode" in line for line in result.stdout.splitlines())
