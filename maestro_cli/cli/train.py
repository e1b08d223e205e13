"""Stage ``train``: train a generator or transcriber backend."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.cli.io import training_report
from maestro_cli.cli.options import OPTIONS
from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.protocols import TrainRequest
from maestro_cli.registry import get_registry

NAME = "train"


def command(
    backend: str = typer.Argument(..., help="What to train: a generator (transformer) or transcriber (onsets-frames)."),
    data: Path = typer.Option(..., "--data", help="MAESTRO-layout dataset root (or token cache)."),
    out: Path = typer.Option(Path("runs/latest"), "--out",
                             help="Run folder for checkpoints (last.pt, best.pt) and logs."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Optimizer steps (default: the preset's)."),
    resume: bool = typer.Option(False, "--resume", help="Continue exactly from <out>/last.pt."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps."),
    options: Optional[List[str]] = OPTIONS,
) -> None:
    """Train a model backend (-O preset=small -O lr=3e-4 ...); prints the best checkpoint's path."""
    for stage in ("generator", "transcriber"):
        registry = get_registry(stage)
        if any(backend == b.name or backend in b.aliases for b in registry.backends):
            trainer = registry.get(backend).create([])
            if not hasattr(trainer, "train"):
                raise UsageError(f"backend '{backend}' cannot be trained")
            try:
                result = trainer.train(TrainRequest(data, out, steps, resume, device, options or [], training_report()))
            except FileNotFoundError as exc:  # e.g. --resume without a last checkpoint in the run folder
                raise MaestroError(str(exc), out) from None
            except ValueError as exc:  # e.g. an unavailable --device or an inconsistent configuration
                raise MaestroError(str(exc)) from None
            print(result)
            return
    raise UsageError(f"no trainable backend named '{backend}'")
