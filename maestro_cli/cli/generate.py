"""Stage ``generate``: new piano performances from a trained generator."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.batch.files import input_problem
from maestro_cli.cli.io import console, emit
from maestro_cli.cli.options import BACKEND, JSON, OPTIONS, OUT_DIR, OVERWRITE
from maestro_cli.errors import UsageError
from maestro_cli.outputs import atomic_write_bytes, output_path
from maestro_cli.protocols import DEFAULT_GUIDANCE, GenerationRequest
from maestro_cli.registry import get_backend

NAME = "generate"
#: The longest piece ``--seconds`` may ask for: an hour, longer than any piece in MAESTRO.
MAX_SECONDS = 3600.0


def command(
    composer: Optional[str] = typer.Option(None, "--composer", "-c", help="Composer to condition on (e.g. Chopin)."),
    n: int = typer.Option(1, "-n", "--num", min=1, help="Number of pieces (generated as one batch)."),
    seconds: float = typer.Option(30.0, "--seconds", min=0.1,
                                  help="Length of music per piece, in seconds (at most 3600)."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.01, help="Sampling temperature."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, help="Sample among the k most likely events."),
    top_p: Optional[float] = typer.Option(None, "--top-p", min=0.0, max=1.0, help="Nucleus sampling mass."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0,
                                       help="Random seed; same seed and arguments give identical MIDI (default: a "
                                            "fresh seed per run, reported on stderr)."),
    guidance: float = typer.Option(DEFAULT_GUIDANCE, "--guidance", min=0.0,
                                   help="Classifier-free guidance weight W for --composer (1: plain conditional; "
                                        "the default 2 makes the composer audible at twice the compute)."),
    primer: Optional[Path] = typer.Option(None, "--primer", help="A MIDI file to continue."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint",
                                              help="Model folder or checkpoint file (default: the shipped model)."),
    out_dir: Optional[Path] = OUT_DIR,
    options: Optional[List[str]] = OPTIONS,
    backend: Optional[str] = BACKEND,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Generate new expressive piano performances as MIDI files; prints their paths."""
    if composer is not None and not composer.strip():
        raise UsageError("--composer is empty; name a composer (e.g. Chopin), or leave it out for any composer")
    if seconds > MAX_SECONDS:
        raise UsageError(f"--seconds must be at most {MAX_SECONDS:g} (an hour of music per piece), not {seconds:g}")
    if primer is not None and (problem := input_problem(primer)) is not None:
        raise problem  # before the model loads
    generator = get_backend("generator", backend).create(options or [])
    name = (composer or "any").lower().replace(" ", "_")
    if seed is None:
        seed = fresh_seed(name, n, out_dir or Path.cwd())
        console.print(f"seed {seed} (pass --seed {seed} to reproduce)")
    request = GenerationRequest(composer, n, seconds, temperature, top_k, top_p, seed, primer, checkpoint, guidance)
    targets = [output_path(Path(f"{name}_seed{seed}_{i:02d}"), ".mid", out_dir, None, overwrite) for i in range(n)]
    for target, midi in zip(targets, generator.generate(request)):
        atomic_write_bytes(target, midi)
        emit({"path": str(target), "seed": seed} if as_json else target, as_json)


def fresh_seed(name: str, n: int, folder: Path) -> int:
    """A random seed below 2**31 whose output names (``<name>_seed<S>_<i>.mid``) are all free in ``folder``."""
    while True:
        seed = secrets.randbelow(2**31)
        if not any((folder / f"{name}_seed{seed}_{i:02d}.mid").exists() for i in range(n)):
            return seed
