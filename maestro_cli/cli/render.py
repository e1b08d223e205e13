"""Stage ``render``: MIDI to audio."""

from __future__ import annotations

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
from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.outputs import atomic_output, output_path
from maestro_cli.registry import get_backend

NAME = "render"


def command(
    inputs: Optional[List[str]] = typer.Argument(None, help="MIDI files (or '-' / a pipe: paths on stdin)."),
    out_dir: Optional[Path] = OUT_DIR,
    output: Optional[List[str]] = OUTPUT_OR_OPTIONS,
    sample_rate: int = typer.Option(44100, "--sample-rate", help="Output sample rate in Hz."),
    soundfont: Optional[Path] = typer.Option(None, "--soundfont", help="A .sf2/.sf3 soundfont (default: the backend's)."),
    audio_format: str = typer.Option("wav", "--format", help="wav or flac."),
    backend: Optional[str] = BACKEND,
    overwrite: bool = OVERWRITE,
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
    out_file, options = split_output_and_options(output)
    paths = read_inputs(inputs)
    single_output(out_file, paths, out_dir)
    renderer = get_backend("renderer", backend).create(options)

    def work(midi: Path) -> None:
        if not midi.is_file():
            raise MaestroError("no such file", midi)
        target = output_path(midi, f".{audio_format}", out_dir, out_file, overwrite)
        with atomic_output(target) as tmp:
            renderer.render(midi, tmp, sample_rate=sample_rate, audio_format=audio_format, soundfont=soundfont)
        emit(target, as_json)

    if run_batch(paths, work, "render"):
        raise typer.Exit(1)
