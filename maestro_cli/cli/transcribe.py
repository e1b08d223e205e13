"""Stage ``transcribe``: audio to MIDI (and optionally a note CSV)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.cli.batch import BatchFlags, backend_job, batch_inputs, run_files, split_executor_options
from maestro_cli.cli.options import (
    BACKEND,
    EXECUTOR,
    JOBS,
    JSON,
    MANIFEST,
    OUT_DIR,
    OUTPUT_OR_OPTIONS,
    OVERWRITE,
    SKIP_EXISTING,
    single_output,
    split_output_and_options,
)
from maestro_cli.outputs import atomic_output, output_path

NAME = "transcribe"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".opus")


def command(
    inputs: Optional[List[str]] = typer.Argument(
        None, help="Audio files (WAV, FLAC, ...), folders of them, manifests (.txt/.jsonl), or paths on stdin."),
    out_dir: Optional[Path] = OUT_DIR,
    output: Optional[List[str]] = OUTPUT_OR_OPTIONS,
    notes_csv: bool = typer.Option(False, "--notes-csv",
                                   help="Also write <stem>.notes.csv (onset_s,offset_s,pitch,velocity)."),
    backend: Optional[str] = BACKEND,
    overwrite: bool = OVERWRITE,
    skip_existing: bool = SKIP_EXISTING,
    jobs: Optional[int] = JOBS,
    executor: Optional[str] = EXECUTOR,
    manifest: Optional[Path] = MANIFEST,
    as_json: bool = JSON,
) -> None:
    """Transcribe piano recordings to MIDI; prints the output paths."""
    out_file, options = split_output_and_options(output)
    flags = BatchFlags(jobs, executor, manifest, skip_existing, overwrite, as_json)
    options, executor_options = split_executor_options(flags, options)
    paths = batch_inputs(inputs, AUDIO_SUFFIXES)
    single_output(out_file, paths, out_dir)

    def plan(audio: Path) -> tuple[Path, ...]:
        target = output_path(audio, ".mid", out_dir, out_file, True)
        return (target, output_path(target, ".notes.csv", target.parent, None, True)) if notes_csv else (target,)

    def result(targets: tuple[Path, ...]) -> Path | dict:
        return {"path": str(targets[0]), "notes_csv": str(targets[1])} if as_json and notes_csv else targets[0]

    run_files("transcribe", paths, plan, backend_job("transcriber", backend, options, transcribe_one), flags,
              executor_options, result)


def transcribe_one(transcriber, item: tuple[Path, tuple[Path, ...]]) -> None:
    """One batch item: transcribe ``audio`` into its MIDI (and note CSV) atomically (runs in a worker)."""
    from maestro_cli.audio.io import probe_audio

    audio, targets = item
    probe_audio(audio)  # a missing, empty or non-audio file fails here, before the model runs
    with atomic_output(targets[0]) as tmp, (atomic_output(targets[1]) if len(targets) > 1 else
                                            contextlib.nullcontext()) as tmp_csv:
        transcriber.transcribe(audio, tmp, notes_csv=tmp_csv)
