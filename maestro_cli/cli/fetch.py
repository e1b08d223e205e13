"""Stage ``fetch``: download and verify MAESTRO (or another registered dataset)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.cli.io import emit
from maestro_cli.cli.options import BACKEND, JSON, OPTIONS
from maestro_cli.registry import get_backend

NAME = "fetch"


def command(
    version: Optional[str] = typer.Option(None, "--version", help="Dataset version: v1, v2 or v3 (default v3; "
                                          "with --from-zip: read from the zip)."),
    midi_only: bool = typer.Option(False, "--midi-only",
                                   help="Only the MIDI zip (about 56 MB) instead of audio + MIDI (about 101 GB)."),
    root: Optional[Path] = typer.Option(None, "--root",
                                        help="Data root (default: $MAESTRO_HOME or the user data dir)."),
    mirror: Optional[str] = typer.Option(None, "--mirror", help="Base URL replacing https://storage.googleapis.com/magentadata/datasets/maestro/."),
    from_zip: Optional[Path] = typer.Option(None, "--from-zip",
                                            help="Import a zip downloaded elsewhere (verified the same way)."),
    sha256: Optional[str] = typer.Option(None, "--sha256", help="Expected SHA-256 (overrides the built-in one)."),
    options: Optional[List[str]] = OPTIONS,
    backend: Optional[str] = BACKEND,
    as_json: bool = JSON,
) -> None:
    """Download, verify (SHA-256) and extract a MAESTRO release, resuming interrupted downloads;
    prints the dataset folder."""
    dataset = get_backend("dataset", backend).create(options or [])
    folder = dataset.fetch(version=version, midi_only=midi_only, root=root, mirror=mirror, from_zip=from_zip,
                           sha256=sha256)
    emit(folder, as_json)
