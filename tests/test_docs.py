"""What a new user reads works as written: no internal jargon, every file the docs cite exists, every command
block runs inside the project's venv (or through bin/), never a bare `python` that only works inside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# docs/jobs.md is the job client's guide, checked with the client (tests/jobs/).
USER_DOCS = sorted({ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("Pulumi.*.yaml")}
                   - {ROOT / "docs" / "jobs.md"})
CITED = re.compile(r"(?<![\w/.])((?:stacks|components|jobs|bin|images|policy|benchmarks|apps|docs|tests)/[\w./-]*\w/?)")


def ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


@pytest.mark.parametrize("doc", USER_DOCS, ids=ids(USER_DOCS))
def test_user_docs_never_speak_of_seeds(doc):
    """"seed 003", "the gcpvm seed": the project's origin documents mean nothing to a user."""
    lines = [f"{i}: {line}" for i, line in enumerate(doc.read_text().splitlines(), 1)
             if re.search(r"\bseeds?\b", line, re.IGNORECASE)]
    assert lines == []


@pytest.mark.parametrize("doc", USER_DOCS, ids=ids(USER_DOCS))
def test_every_file_the_docs_cite_exists(doc):
    missing = sorted({m for m in CITED.findall(doc.read_text())
                      if "venv" not in m and not (ROOT / m).exists() and not any(ROOT.glob(f"{m}*"))})
    assert missing == []


@pytest.mark.parametrize("doc", USER_DOCS, ids=ids(USER_DOCS))
def test_commands_use_the_venv_not_a_bare_python(doc):
    """`python -m stacks.preview` / `python benchmarks/x.py` fail outside .venv; the docs say `./bin/preview`,
    `./bin/venv python ...` or `.venv/bin/python ...` (a `python` after `--` runs on the cluster, not here)."""
    bad, fenced = [], False
    for i, line in enumerate(doc.read_text().splitlines(), 1):
        fenced ^= line.lstrip().startswith("```")
        commands = [line] if fenced or doc.suffix == ".yaml" else re.findall(r"`([^`]+)`", line)
        for command in commands:
            command = command.split(" -- ")[0]
            if re.search(r"(^|[\s(])python3? (-m (?!venv)|benchmarks/)", command) and not re.search(
                    r"(\.venv(-test)?/bin/|bin/venv )python", command):
                bad.append(f"{i}: {line.strip()}")
    assert bad == []
