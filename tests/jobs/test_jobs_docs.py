"""Every `./bin/jobs` command in the README and docs/ works as written: it parses with the client's own
parser, its --working-dir exists and holds the script the entrypoint runs; and docs/jobs.md, the client's
guide, speaks no internal jargon and runs nothing with a bare `python` (see tests/test_docs.py for the rest)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from jobs_testing import REPO_ROOT

from jobs import cli, local_cluster

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("**/*.md"))]
GUIDE = REPO_ROOT / "docs" / "jobs.md"


def documented_commands(doc: Path) -> list[tuple[int, list[str]]]:
    """(line, words after ./bin/jobs) of each command in a fenced block; `[--flag]` counts as given."""
    found, fenced, pending = [], False, ""
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            continue
        text = pending + line.strip().removeprefix("$ ")
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        if text.startswith("./bin/jobs "):
            words = shlex.split(re.sub(r"\[([^\]]+)\]", r"\1", text), comments=True)
            found.append((number, words[1:]))
    return found


COMMANDS = [(doc, number, words) for doc in DOCS for number, words in documented_commands(doc)]


def test_the_guide_and_the_readme_show_commands() -> None:
    assert len([c for c in COMMANDS if c[0] == GUIDE]) >= 10 and any(c[0].name == "README.md" for c in COMMANDS)


@pytest.mark.parametrize(("doc", "number", "words"), COMMANDS,
                         ids=[f"{doc.relative_to(REPO_ROOT)}:{number}" for doc, number, _ in COMMANDS])
def test_documented_command_parses_and_its_script_exists(doc: Path, number: int, words: list[str], monkeypatch) -> None:
    monkeypatch.chdir(REPO_ROOT)  # the docs run commands from the repository root
    if words[0] == "local-cluster":
        local_cluster.build_parser().parse_args(words[1:])
        return
    args = cli.parse_args(words)
    if args.command != "submit":
        return
    runtime_env = cli.runtime_env_from_args(args)  # raises when --working-dir is not a directory
    cli.request_from_args(args)
    entrypoint = args.entrypoint
    if entrypoint[0] == "python" and entrypoint[1].endswith(".py"):
        # The script runs on the cluster, in the uploaded working_dir: without --working-dir it is not there.
        assert "working_dir" in runtime_env, f"{doc.name}:{number}: {entrypoint[1]} needs --working-dir"
        assert (Path(runtime_env["working_dir"]) / entrypoint[1]).is_file()
        for flag, value in zip(entrypoint, entrypoint[1:], strict=False):
            if flag == "--config":
                assert (Path(runtime_env["working_dir"]) / value).is_file()


def test_the_guide_speaks_no_jargon_and_runs_no_bare_python() -> None:
    bad = []
    for number, line in enumerate(GUIDE.read_text().splitlines(), 1):
        local = line.split(" -- ")[0]  # after `--` a command runs on the cluster, in its image
        if re.search(r"\bseeds?\b", line, re.IGNORECASE) or re.search(r"(^|[\s`(])python3? (-m |benchmarks/)", local):
            if not re.search(r"(\.venv/bin/|bin/venv )python|runs `python -m jobs`", local):
                bad.append(f"{number}: {line}")
    assert bad == []
