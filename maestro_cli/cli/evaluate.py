"""Stage ``evaluate``: standard metrics for transcription, alignment and generation."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.table import Table

from maestro_cli.cli.io import console, emit, read_inputs
from maestro_cli.cli.options import JSON, OVERWRITE
from maestro_cli.errors import UsageError
from maestro_cli.outputs import refuse_existing
from maestro_cli.registry import get_backend

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
    refuse_existing(plot, overwrite)
    if plot is not None and ref.is_dir():
        raise UsageError("--plot takes a single --ref/--est pair, not folders")
    result = get_backend("metric", "transcription").create([]).evaluate(ref=ref, est=est)
    for stem in result["missing"]:
        console.print(f"warning: {stem}: no estimate in {est}", markup=False, highlight=False)
    if as_json:
        for row in result["rows"]:
            emit(row, as_json=True)
    else:
        _transcription_table(result["rows"])
    if plot is not None:
        from maestro_cli import display
        from maestro_cli.symbolic.midi import read_notes

        display.transcription_roll(read_notes(ref), read_notes(est), plot, title=f"{ref.name} vs {est.name}")


@app.command("alignment")
def alignment(
    ref: List[Path] = typer.Option(..., "--ref", help=(
        "Reference CSV, score + performance annotation files (ASAP), or a match file / notes CSV.")),
    est: Path = typer.Option(..., "--est", help="Estimated alignment CSV, or a notes CSV / match file."),
    score: Optional[Path] = typer.Option(None, "--score", help=(
        "The score, to time a match-file reference's score notes when the estimate is a time map.")),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write an error-per-point PNG (time maps)."),
    as_json: bool = JSON,
) -> None:
    """Alignment error at reference points: mean, median, p90, % within 25/50/100/200 ms.

    With a note-level reference and estimate (match files, notes CSVs): precision, recall and F-measure of
    matched (score note, performance note) pairs, of deletions and of insertions.
    """
    result = get_backend("metric", "alignment").create([]).evaluate(ref=ref, est=est, score=score)
    points = result.pop("point_errors", None)
    if as_json:
        emit(result, as_json=True)
    elif result["level"] == "notes":
        _note_alignment_table(result)
    else:
        summary = {key: value for key, value in result.items() if key not in ("ref", "est", "level")}
        table = Table(box=None, pad_edge=False)
        for key in summary:
            table.add_column(key.replace("_", " "), justify="right")
        table.add_row(*(str(value) if isinstance(value, int) else f"{value:.1f}" for value in summary.values()))
        Console(width=160).print(table)
    if plot is not None and points is not None:
        import numpy as np

        from maestro_cli import display

        display.alignment_errors(np.asarray(points["performance_s"]), np.asarray(points["error_s"]), plot)


def _note_alignment_table(summary: dict) -> None:
    table = Table(box=None, pad_edge=False, caption=f"{summary['score_notes']} score notes in the reference, "
                  f"{summary['unscored']} estimated score notes it does not mention (not scored)")
    for column in ("", "precision", "recall", "F", "estimated", "reference"):
        table.add_column(column, justify="right")
    for label in ("match", "deletion", "insertion"):
        table.add_row(label, *(f"{summary[f'{label}_{key}']:.3f}" for key in ("precision", "recall", "f")),
                      str(summary[f"{label}_est"]), str(summary[f"{label}_ref"]))
    Console(width=160).print(table)


@app.command("generation")
def generation(
    inputs: Optional[List[str]] = typer.Argument(None, help="Generated MIDI files (or paths on stdin)."),
    dataset: Optional[Path] = typer.Option(None, "--dataset",
                                           help="MAESTRO root for the reference split (default: $MAESTRO_HOME)."),
    split: str = typer.Option("test", "--split", help="Reference split."),
    reference_pieces: int = typer.Option(50, "--reference-pieces", min=0,
                                         help="Compare with a seeded random sample of this many pieces of the split; "
                                              "0: all."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint",
                                              help="Generator checkpoint: report NLL per event on the split."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the distributions side by side as PNG."),
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Generation statistics vs a reference split (overlap area, KL) and model NLL per event.

    Features: pitch class, pitch range and note density per 4 s window, inter-onset interval, duration (sustain
    applied), velocity, polyphony; each compared as fixed-bin histograms (overlap area, KL(reference||generated)).
    Prints a table, or one JSON object with --json.
    """
    paths = read_inputs(inputs, required=checkpoint is None)
    if plot is not None and not paths:
        raise UsageError("--plot needs generated MIDI files to compare")
    refuse_existing(plot, overwrite)
    report = get_backend("metric", "generation").create([]).evaluate(
        paths=paths, dataset=dataset, split=split, checkpoint=checkpoint, reference_pieces=reference_pieces)
    for skipped in report.get("reference", {}).get("unreadable", []):
        console.print(f"error: {skipped['path']}: {skipped['error']}", markup=False, highlight=False, soft_wrap=True)
    if plot is not None:
        _generation_plot(plot, report["features"])
        report["plot"] = str(plot)
    if as_json:
        emit(report, as_json=True)
    else:
        _generation_tables(report)


@app.command("roundtrip")
def roundtrip(
    composer: Optional[str] = typer.Option(None, "--composer", "-c", help="Composer to condition the generator on."),
    n: int = typer.Option(2, "-n", "--num", min=1, help="Pieces generated per generator."),
    seconds: float = typer.Option(20.0, "--seconds", min=0.1, help="Length of each piece, in seconds."),
    seed: int = typer.Option(0, "--seed", help="Generation seed."),
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint", help="Generator model folder or checkpoint (default: the shipped model)."),
    generators: Optional[List[str]] = typer.Option(
        None, "--generator", help="Generator backend (repeatable; default: every installed one)."),
    renderers: Optional[List[str]] = typer.Option(None, "--renderer",
                                                  help="Renderer backend (repeatable; default: every installed one)."),
    transcribers: Optional[List[str]] = typer.Option(
        None, "--transcriber", help="Transcriber backend (repeatable; default: every installed one)."),
    keep: Optional[Path] = typer.Option(None, "--keep",
                                        help="Keep the generated MIDI, audio and transcriptions in this folder."),
    as_json: bool = JSON,
) -> None:
    """Generate -> render -> transcribe, then score each transcription against its generated MIDI.

    One row per backend combination: mean note F1 (onset 50 ms), with offsets, with offsets and velocity
    (mir_eval, sustain applied to the generated MIDI). Prints a table, or one JSON object per combination.
    """
    from maestro_cli.protocols import GenerationRequest

    request = GenerationRequest(composer=composer, n=n, seconds=seconds, seed=seed, checkpoint=checkpoint)
    run_roundtrip(request, generators, renderers, transcribers, keep=keep, as_json=as_json)


def run_roundtrip(request, generators: list[str] | None, renderers: list[str] | None,
                  transcribers: list[str] | None, *, keep: Path | None, as_json: bool) -> list[dict[str, Any]]:
    """Every (generator, renderer, transcriber) combination: JSON lines as they finish, or a table at the end.

    Exits with code 1 (after printing the combinations that worked) when any backend failed.
    """
    from maestro_cli.pipelines import roundtrip as rt

    names = {stage: rt.backend_names(stage, chosen)
             for stage, chosen in zip(rt.STAGES, (generators, renderers, transcribers))}
    results: list[dict[str, Any]] = []
    failures = rt.Failures()
    with tempfile.TemporaryDirectory(prefix="maestro-roundtrip-") as tmp:
        workdir = keep if keep is not None else Path(tmp)
        for result in rt.run(request, names["generator"], names["renderer"], names["transcriber"], workdir, failures):
            results.append(result)
            if as_json:
                emit(result, as_json=True)
    if results and not as_json:
        _roundtrip_table(results)
    if failures:
        raise typer.Exit(1)
    return results


def _transcription_table(rows: list[dict]) -> None:
    table = Table(box=None, pad_edge=False)
    pedal = any("pedal_f1" in row for row in rows)
    labels = ("file", "note P", "note R", "note F1", "+offset F1", "+off+vel F1", "frame F1") + \
        (("pedal F1", "pedal on F1") if pedal else ()) + ("ref", "est")
    for label in labels:
        table.add_column(label, justify="left" if label == "file" else "right", no_wrap=True)
    keys = ("note_precision", "note_recall", "note_f1", "note_offset_f1", "note_offset_velocity_f1", "frame_f1") + \
        (("pedal_f1", "pedal_onset_f1") if pedal else ())
    for row in rows:
        table.add_row(row["name"], *(f"{row[key]:.3f}" if key in row else "-" for key in keys),
                      f"{row['n_ref']:.0f}", f"{row['n_est']:.0f}")
    Console(width=max(len(row["name"]) for row in rows) + 90 + 24 * pedal).print(table)


PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _generation_plot(target: Path, features: dict[str, dict]) -> None:
    from maestro_cli import display
    from maestro_cli.metrics.generation import FEATURES

    labels = {name: f"{f.label} ({f.unit})" if f.unit else f.label for name, f in FEATURES.items()}
    log_x = [name for name, f in FEATURES.items() if f.log_x]
    display.distributions(target, features, labels, log_x=log_x, ticks={"pitch_class": PITCH_CLASSES})


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if abs(value) >= 100 else f"{value:.{digits}f}"


def _generation_tables(report: dict[str, Any]) -> None:
    from maestro_cli.metrics.generation import FEATURES

    out = Console(highlight=False)
    out.width = out.width if out.is_terminal else 120  # a file or a pipe gets whole column titles
    if "features" in report:
        gen, ref = report["generated"], report["reference"]
        table = Table(title=f"generation: {gen['files']} file(s) ({gen['notes']} notes) vs {ref['pieces']} "
                            f"{report['split']} pieces ({ref['notes']} notes)")
        for column in ("feature", "unit", "gen. mean", "ref. mean", "overlap", "KL (nats)"):
            table.add_column(column, justify="left" if column in ("feature", "unit") else "right")
        for name, row in report["features"].items():
            table.add_row(FEATURES[name].label, FEATURES[name].unit, _fmt(row["generated"]["mean"], 2),
                          _fmt(row["reference"]["mean"], 2), _fmt(row["overlap"]), _fmt(row["kl"]))
        summary = report["summary"]
        table.add_section()
        table.add_row("mean", "", "", "", _fmt(summary["overlap_mean"]), _fmt(summary["kl_mean"]), style="bold")
        out.print(table)
    if "nll" in report:
        nll = Table(title=f"model on {report['split']}")
        nll.add_column("statistic")
        nll.add_column("value", justify="right")
        for key, value in report["nll"].items():
            nll.add_row(key, _fmt(value, 4) if isinstance(value, float) else str(value))
        out.print(nll)
    if "plot" in report:
        out.print(f"plot: {report['plot']}")


def _roundtrip_table(results: list[dict[str, Any]]) -> None:
    from maestro_cli.pipelines import roundtrip as rt

    table = Table(title="round trip: generate -> render -> transcribe, note F1 against the generated MIDI")
    for column in ("generator", "renderer", "transcriber", "pieces", "note F1", "+offset", "+velocity"):
        table.add_column(column, justify="right" if column not in rt.STAGES else "left")
    for r in results:
        table.add_row(r["generator"], r["renderer"], r["transcriber"], str(r["pieces"]),
                      *(f"{r[key]:.3f}" for key in rt.SCORES))
    out = Console(highlight=False)
    out.width = out.width if out.is_terminal else 120  # a file or a pipe gets whole column titles
    out.print(table)
