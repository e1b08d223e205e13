"""Stage ``transcribe``: audio to MIDI (and optionally a note CSV)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.cli.io import emit, read_inputs, run_batch
from maestro_cli.cli.options import (
    BACKEND,
    JSON,
    OUT_DIR,
    OUTPUT_OR_OPTIONS,
    OVERWRITE,
    single_output,
    split_output_and_options,
)
from maestro_cli.outputs import atomic_output, output_path
from maestro_cli.registry import get_backend

NAME = "transcribe"


def command(
    inputs: Optional[List[str]] = typer.Argument(None, help="Audio files: WAV, FLAC, ... (or paths on stdin)."),
    out_dir: Optional[Path] = OUT_DIR,
    output: Optional[List[str]] = OUTPUT_OR_OPTIONS,
    notes_csv: bool = typer.Option(False, "--notes-csv", help="Also write <stem>.notes.csv (onset_s,offset_s,pitch,velocity)."),
    backend: Optional[str] = BACKEND,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Transcribe piano recordings to MIDI; prints the output paths."""
    out_file, options = split_output_and_options(output)
    paths = read_inputs(inputs)
    single_output(out_file, paths, out_dir)
    transcriber = get_backend("transcriber", backend).create(options)

    from maestro_cli.audio.io import probe_audio

    def work(audio: Path) -> None:
        probe_audio(audio)  # a missing, empty or non-audio file fails here, before any model loads
        target = output_path(audio, ".mid", out_dir, out_file, overwrite)
        csv_target = output_path(target, ".notes.csv", target.parent, None, overwrite) if notes_csv else None
        with atomic_output(target) as tmp, (atomic_output(csv_target) if csv_target else
                                            contextlib.nullcontext()) as tmp_csv:
            transcriber.transcribe(audio, tmp, notes_csv=tmp_csv)
        emit({"path": str(target), "notes_csv": str(csv_target)} if as_json and csv_target else target, as_json)

    if run_batch(paths, work, "transcribe"):
        raise typer.Exit(1)
