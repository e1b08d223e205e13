"""Stage ``render``: MIDI to audio."""

from __future__ import annotations

from functools import partial
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
    OPTIONS,
    OUT_DIR,
    OUTPUT,
    OVERWRITE,
    SKIP_EXISTING,
    single_output,
)
from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.outputs import atomic_output, output_path

NAME = "render"
MIDI_SUFFIXES = (".mid", ".midi")


def command(
    inputs: Optional[List[str]] = typer.Argument(
        None, help="MIDI files, folders of them, manifests (.txt/.jsonl), or '-' / a pipe: paths on stdin."),
    out_dir: Optional[Path] = OUT_DIR,
    out_file: Optional[Path] = OUTPUT,
    options: Optional[List[str]] = OPTIONS,
    sample_rate: int = typer.Option(44100, "--sample-rate", help="Output sample rate in Hz."),
    soundfont: Optional[Path] = typer.Option(None, "--soundfont",
                                             help="A .sf2/.sf3 soundfont (default: the backend's)."),
    audio_format: str = typer.Option("wav", "--format", help="wav or flac."),
    backend: Optional[str] = BACKEND,
    overwrite: bool = OVERWRITE,
    skip_existing: bool = SKIP_EXISTING,
    jobs: Optional[int] = JOBS,
    executor: Optional[str] = EXECUTOR,
    manifest: Optional[Path] = MANIFEST,
    as_json: bool = JSON,
) -> None:
    """Render MIDI files to audio (WAV or FLAC) with a soundfont synth; prints the output paths."""
    if audio_format not in ("wav", "flac"):
        raise UsageError(f"--format must be wav or flac, not '{audio_format}'")
    if not 8000 <= sample_rate <= 192000:
        raise UsageError(f"--sample-rate must be between 8000 and 192000 Hz, not {sample_rate}")
    if soundfont is not None:
        from maestro_cli.audio.synth import check_soundfont

        check_soundfont(soundfont)
    options = options or []
    flags = BatchFlags(jobs, executor, manifest, skip_existing, overwrite, as_json)
    options, executor_options = split_executor_options(flags, options)
    paths = batch_inputs(inputs, MIDI_SUFFIXES)
    single_output(out_file, paths, out_dir)
    job = backend_job("renderer", backend, options, partial(render_one, sample_rate=sample_rate,
                                                             audio_format=audio_format, soundfont=soundfont))
    run_files("render", paths, lambda midi: (output_path(midi, f".{audio_format}", out_dir, out_file, True),), job,
              flags, executor_options)


def render_one(renderer, item: tuple[Path, tuple[Path, ...]], *, sample_rate: int, audio_format: str,
               soundfont: Path | None) -> None:
    """One batch item: render ``midi`` into its output atomically (runs in a worker)."""
    midi, (target,) = item
    if not midi.is_file():
        raise MaestroError("no such file", midi)
    with atomic_output(target) as tmp:
        renderer.render(midi, tmp, sample_rate=sample_rate, audio_format=audio_format, soundfont=soundfont)
