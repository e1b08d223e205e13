"""Stage ``evaluate``: standard metrics for transcription, alignment and generation."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.registry import get_backend
from maestro_cli.stages.common import JSON, OVERWRITE

app = typer.Typer(help="Score transcriptions, alignments and generated music with the field's standard metrics.",
                  no_args_is_help=True)


@app.command("transcription")
def transcription(
    ref: Path = typer.Option(..., "--ref", help="Reference MIDI or note CSV/TSV (or a folder for batch mode)."),
    est: Path = typer.Option(..., "--est", help="Estimated MIDI (or a folder with matching stems)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a piano-roll comparison PNG."),
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Note P/R/F1 (onset 50 ms), with offsets, with offsets and velocity, and frame F1 (mir_eval)."""
    get_backend("metric", "transcription").create([]).evaluate(ref=ref, est=est, plot=plot, as_json=as_json,
                                                               overwrite=overwrite)


@app.command("alignment")
def alignment(
    ref: List[Path] = typer.Option(..., "--ref", help=(
        "Reference CSV, score + performance annotation files (ASAP), or a match file / notes CSV.")),
    est: Path = typer.Option(..., "--est", help="Estimated alignment CSV, or a notes CSV / match file."),
    score: Optional[Path] = typer.Option(None, "--score", help=(
        "The score, to time a match-file reference's score notes when the estimate is a time map.")),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write an error-per-point PNG."),
    as_json: bool = JSON,
) -> None:
    """Alignment error at reference points: mean, median, p90, % within 25/50/100/200 ms.

    With a note-level reference and estimate (match files, notes CSVs): precision, recall and F-measure of
    matched (score note, performance note) pairs, of deletions and of insertions.
    """
    get_backend("metric", "alignment").create([]).evaluate(ref=ref, est=est, plot=plot, as_json=as_json,
                                                           score=score)


@app.command("generation")
def generation(
    inputs: Optional[List[str]] = typer.Argument(None, help="Generated MIDI files (or paths on stdin)."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="MAESTRO root for the reference split (default: $MAESTRO_HOME)."),
    split: str = typer.Option("test", "--split", help="Reference split."),
    reference_pieces: int = typer.Option(50, "--reference-pieces", min=0,
                                         help="Compare with a seeded random sample of this many pieces of the split; 0: all."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Generator checkpoint: report NLL per event on the split."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the distributions side by side as PNG."),
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Generation statistics vs a reference split (overlap area, KL) and model NLL per event.

    Features: pitch class, pitch range and note density per 4 s window, inter-onset interval, duration (sustain
    applied), velocity, polyphony; each compared as fixed-bin histograms (overlap area, KL(reference||generated)).
    Prints a table, or one JSON object with --json.
    """
    get_backend("metric", "generation").create([]).evaluate(
        inputs=inputs, dataset=dataset, split=split, checkpoint=checkpoint, plot=plot, as_json=as_json,
        reference_pieces=reference_pieces, overwrite=overwrite)


@app.command("roundtrip")
def roundtrip(
    composer: Optional[str] = typer.Option(None, "--composer", "-c", help="Composer to condition the generator on."),
    n: int = typer.Option(2, "-n", "--num", min=1, help="Pieces generated per generator."),
    seconds: float = typer.Option(20.0, "--seconds", min=0.1, help="Length of each piece, in seconds."),
    seed: int = typer.Option(0, "--seed", help="Generation seed."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Generator model folder or checkpoint (default: the shipped model)."),
    generators: Optional[List[str]] = typer.Option(None, "--generator", help="Generator backend (repeatable; default: every installed one)."),
    renderers: Optional[List[str]] = typer.Option(None, "--renderer", help="Renderer backend (repeatable; default: every installed one)."),
    transcribers: Optional[List[str]] = typer.Option(None, "--transcriber", help="Transcriber backend (repeatable; default: every installed one)."),
    keep: Optional[Path] = typer.Option(None, "--keep", help="Keep the generated MIDI, audio and transcriptions in this folder."),
    as_json: bool = JSON,
) -> None:
    """Generate -> render -> transcribe, then score each transcription against its generated MIDI.

    One row per backend combination: mean note F1 (onset 50 ms), with offsets, with offsets and velocity
    (mir_eval, sustain applied to the generated MIDI). Prints a table, or one JSON object per combination.
    """
    from maestro_cli import roundtrip as rt
    from maestro_cli.stages.generate import GenerationRequest

    request = GenerationRequest(composer=composer, n=n, seconds=seconds, seed=seed, checkpoint=checkpoint)
    rt.command(request, generators, renderers, transcribers, keep=keep, as_json=as_json)
