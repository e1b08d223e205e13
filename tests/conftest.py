"""Shared fixtures: the real data folder (``$MAESTRO_SHARED_DATA``, default ``../shared/data``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MAESTRO_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set MAESTRO_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def maestro_root(shared_data: Path) -> Path:
    return shared_data / "maestro-v2.0.0-midi"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Keep tests away from the user's data dir."""
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path_factory.getbasetemp() / "maestro-home"))
