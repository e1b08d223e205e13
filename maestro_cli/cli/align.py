"""Stage ``align``: synchronise a performance (audio or MIDI) with a score MIDI."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.cli.io import emit, read_inputs
from maestro_cli.cli.options import BACKEND, JSON, OUTPUT_OR_OPTIONS, OVERWRITE, split_output_and_options
from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.registry import get_backend

NAME = "align"


def command(
    performance: Optional[str] = typer.Argument(None, help="Performance audio or MIDI (or its path on stdin)."),
    score: Path = typer.Option(..., "--score", help="The score as a MIDI file."),
    output: Optional[List[str]] = OUTPUT_OR_OPTIONS,
    out_format: str = typer.Option("csv", "--format", help="csv (score_time_s,performance_time_s + JSON sidecar), json, or midi (score re-timed)."),
    backend: Optional[str] = BACKEND,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Align a performance (audio or MIDI) to a score; prints the path of the alignment."""
    if out_format not in ("csv", "json", "midi"):
        raise UsageError(f"--format must be csv, json or midi, not '{out_format}'")
    paths = read_inputs([performance] if performance else None)
    if len(paths) != 1:
        raise UsageError("align takes exactly one performance")
    out_file, options = split_output_and_options(output)
    if not score.is_file():
        raise MaestroError("no such file", score)
    aligner = get_backend("aligner", backend).create(options)
    from maestro_cli.align.io import detect_kind, write_alignment

    kind = detect_kind(paths[0])
    result = aligner.align(paths[0], score, kind=kind)
    target = write_alignment(result, paths[0], score, out_format, out_file, overwrite)
    emit(target, as_json)
