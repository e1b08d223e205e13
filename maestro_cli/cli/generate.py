"""Stage ``generate``: new piano performances from a trained generator."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.cli.io import emit
from maestro_cli.cli.options import BACKEND, JSON, OPTIONS, OUT_DIR, OVERWRITE
from maestro_cli.outputs import atomic_write_bytes, output_path
from maestro_cli.protocols import GenerationRequest
from maestro_cli.registry import get_backend

NAME = "generate"


def command(
    composer: Optional[str] = typer.Option(None, "--composer", "-c", help="Composer to condition on (e.g. Chopin)."),
    n: int = typer.Option(1, "-n", "--num", min=1, help="Number of pieces (generated as one batch)."),
    seconds: float = typer.Option(30.0, "--seconds", min=0.1, help="Length of music per piece, in seconds."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.01, help="Sampling temperature."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, help="Sample among the k most likely events."),
    top_p: Optional[float] = typer.Option(None, "--top-p", min=0.0, max=1.0, help="Nucleus sampling mass."),
    seed: int = typer.Option(0, "--seed", help="Random seed; same seed and arguments give identical MIDI."),
    primer: Optional[Path] = typer.Option(None, "--primer", help="A MIDI file to continue."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Model folder or checkpoint file (default: the shipped model)."),
    out_dir: Optional[Path] = OUT_DIR,
    options: Optional[List[str]] = OPTIONS,
    backend: Optional[str] = BACKEND,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Generate new expressive piano performances as MIDI files; prints their paths."""
    generator = get_backend("generator", backend).create(options or [])
    request = GenerationRequest(composer, n, seconds, temperature, top_k, top_p, seed, primer, checkpoint)
    stem = f"{(composer or 'any').lower().replace(' ', '_')}_seed{seed}"
    targets = [output_path(Path(f"{stem}_{i:02d}"), ".mid", out_dir, None, overwrite) for i in range(n)]
    for target, midi in zip(targets, generator.generate(request)):
        atomic_write_bytes(target, midi)
        emit(target, as_json)
