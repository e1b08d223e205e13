"""Shared fixtures: the real data folder (``$MAESTRO_SHARED_DATA``, default ``../shared/data``)."""

from __future__ import annotations

import os
import tomllib
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


@pytest.fixture(scope="session")
def toy_plugin(tmp_path_factory) -> dict[str, str]:
    """Environment that shows the docs' example plugin to a ``maestro`` subprocess, without installing it.

    A dist-info made from the example's own pyproject.toml (name, version, entry points) goes on PYTHONPATH with
    its source, so the user's ``maestro --help`` never lists a toy.
    """
    source = REPO / "docs" / "examples" / "maestro-toy-renderer"
    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    folder = tmp_path_factory.mktemp("toy-plugin")
    dist_info = folder / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                        f"Version: {project['version']}\n")
    entry_points = project["entry-points"]["maestro_cli"]
    (dist_info / "entry_points.txt").write_text("[maestro_cli]\n"
                                                + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    return {"PYTHONPATH": os.pathsep.join([str(folder), str(source)])}
