"""Stage ``data``: browse a MAESTRO root."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from maestro_cli.cli.options import BACKEND, JSON
from maestro_cli.registry import get_backend

NAME = "data"


def command(
    root: Optional[Path] = typer.Option(None, "--root", help="Dataset root (default: $MAESTRO_HOME or the user data dir)."),
    composer: Optional[str] = typer.Option(None, "--composer", help="Composer filter (case/accent-insensitive substring)."),
    split: Optional[str] = typer.Option(None, "--split", help="train, validation or test."),
    year: Optional[int] = typer.Option(None, "--year", help="Competition year."),
    version: Optional[str] = typer.Option(None, "--version", help="Metadata version to read (default: the highest found)."),
    backend: Optional[str] = BACKEND,
    as_json: bool = JSON,
) -> None:
    """List the pieces of a dataset (rich table, or JSON lines) with counts and hours per split."""
    dataset = get_backend("dataset", backend).create([])
    dataset.show(root=root, composer=composer, split=split, year=year, as_json=as_json, version=version)
