"""Fixtures of the real-engine test: a private dockerd for the session, the stand-in base images, and the `dev`
stack deployed into it by the real program. Every test module here sets the `real_docker` marker.

No engine: the tests fail in CI (CI=true) with the reason, and elsewhere skip with the reason printed at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.local_real import engine as engine_module
from tests.local_real.deploy import Deployment, deploy
from tests.local_real.standins import build_standins

NOTES: list[str] = []  # printed in the terminal summary: skipped containers, the engine used, timings


def note(message: str) -> None:
    NOTES.append(message)


def pytest_terminal_summary(terminalreporter) -> None:
    if NOTES:
        terminalreporter.section("real Docker engine")
        for line in NOTES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def engine() -> Iterator[engine_module.Engine]:
    try:
        started = engine_module.start()
    except engine_module.EngineUnavailable as exc:
        note(f"NO ENGINE: {exc}")
        if os.environ.get("CI") == "true":
            pytest.fail(f"real_docker: {exc}", pytrace=False)
        pytest.skip(f"real_docker: {exc}")
    note(f"engine: dockerd pid {started.pid}, {' '.join(started.flags)}, socket {started.socket}")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def standins(engine: engine_module.Engine) -> None:
    began = time.monotonic()
    build_standins(engine, log=lambda m: None)
    note(f"stand-in images built in {time.monotonic() - began:.0f} s")


@pytest.fixture(scope="session")
def deployment(engine, standins, tmp_path_factory) -> Deployment:
    """The dev stack, up. Torn down by the teardown test (and in any case with the engine at session end)."""
    began = time.monotonic()
    deployed = deploy(engine, tmp_path_factory.mktemp("dev"), log=lambda m: None)
    note(f"dev stack created in {time.monotonic() - began:.0f} s (project images built by the program included)")
    for reason in deployed.skipped:
        note(f"SKIPPED container {reason}")
    return deployed
