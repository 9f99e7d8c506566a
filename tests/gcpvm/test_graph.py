"""`python -m stacks.preview gcpvm --graph` (its JSON snapshot is checked with every stack's, in tests/test_preview.py)."""

from __future__ import annotations

import subprocess
import sys

from gcpvm_testing import ROOT


def test_graph_draws_the_components():
    result = subprocess.run([sys.executable, "-m", "stacks.preview", "gcpvm", "--graph"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "graph LR"
    assert any("subgraph" in line and "HeadNode" in line for line in result.stdout.splitlines())
