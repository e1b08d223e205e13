"""Stage ``evaluate``: standard metrics for transcription, alignment and generation."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.registry import get_backend
from maestro_cli.stages.common import JSON

app = typer.Typer(help="Score transcriptions, alignments and generated music with the field's standard metrics.",
                  no_args_is_help=True)


@app.command("transcription")
def transcription(
    ref: Path = typer.Option(..., "--ref", help="Reference MIDI or note CSV/TSV (or a folder for batch mode)."),
    est: Path = typer.Option(..., "--est", help="Estimated MIDI (or a folder with matching stems)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a piano-roll comparison PNG."),
    as_json: bool = JSON,
) -> None:
    """Note P/R/F1 (onset 50 ms), with offsets, with offsets and velocity, and frame F1 (mir_eval)."""
    get_backend("metric", "transcription").create([]).evaluate(ref=ref, est=est, plot=plot, as_json=as_json)


@app.command("alignment")
def alignment(
    ref: List[Path] = typer.Option(..., "--ref", help="Reference CSV, or score + performance annotation files (ASAP)."),
    est: Path = typer.Option(..., "--est", help="Estimated alignment CSV."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write an error-per-point PNG."),
    as_json: bool = JSON,
) -> None:
    """Alignment error at reference points: mean, median, p90, % within 25/50/100/200 ms."""
    get_backend("metric", "alignment").create([]).evaluate(ref=ref, est=est, plot=plot, as_json=as_json)


@app.command("generation")
def generation(
    inputs: Optional[List[str]] = typer.Argument(None, help="Generated MIDI files (or paths on stdin)."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="MAESTRO root for the reference split."),
    split: str = typer.Option("test", "--split", help="Reference split."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Generator checkpoint: report NLL per event on the split."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the distributions side by side as PNG."),
    as_json: bool = JSON,
) -> None:
    """Generation statistics vs a reference split (overlap area, KL) and model NLL per event."""
    get_backend("metric", "generation").create([]).evaluate(inputs=inputs, dataset=dataset, split=split,
                                                            checkpoint=checkpoint, plot=plot, as_json=as_json)
