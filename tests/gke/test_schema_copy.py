"""The vendored schema copy (for checkouts without ../shared) never drifts from the shared originals."""

from __future__ import annotations

import os

import pytest

from tests.gke.conftest import SHARED_SCHEMAS, VENDORED_SCHEMAS


@pytest.mark.skipif(not SHARED_SCHEMAS.is_dir() and not os.environ.get("CI"), reason="no ../shared here")
def test_schema_copy_matches_shared():
    assert SHARED_SCHEMAS.is_dir(), "CI runs beside ../shared: the originals must be there"
    shared = {p.name: p.read_bytes() for p in SHARED_SCHEMAS.iterdir() if p.is_file()}
    vendored = {p.name: p.read_bytes() for p in VENDORED_SCHEMAS.iterdir() if p.is_file()}
    assert vendored == shared, "refresh tests/gke/schemas from ../shared/schemas"
