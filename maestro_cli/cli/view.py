"""Stage ``view``: a piano-roll picture of a MIDI file or a score (MusicXML, .mxl, MEI, kern)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import typer

from maestro_cli.cli.io import emit
from maestro_cli.cli.options import JSON, OVERWRITE
from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.outputs import output_path

NAME = "view"


def pedal_intervals(times: Sequence[float], values: Sequence[int], end: float) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` spans where CC64 is down (value >= 64); a pedal never lifted lasts until ``end``."""
    spans: list[tuple[float, float]] = []
    down_at: float | None = None
    for time, value in sorted(zip(times, values), key=lambda event: event[0]):
        if value >= 64 and down_at is None:
            down_at = float(time)
        elif value < 64 and down_at is not None:
            spans.append((down_at, float(time)))
            down_at = None
    if down_at is not None:
        spans.append((down_at, max(end, down_at)))
    return spans


def command(
    midi: Path = typer.Argument(..., help="A MIDI file, or a score (MusicXML, .mxl, MEI, kern: at its tempo marks)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="PNG file to write (default: <stem>.png here)."),
    start: Optional[float] = typer.Option(None, "--start", min=0.0, help="First second to show (default: first note)."),
    end: Optional[float] = typer.Option(None, "--end", min=0.0, help="Last second to show (default: last note off)."),
    width: float = typer.Option(12.0, "--width", min=2.0, help="Image width in inches (100 pixels per inch)."),
    height: float = typer.Option(5.0, "--height", min=2.0, help="Image height in inches (100 pixels per inch)."),
    report: Optional[Path] = typer.Option(None, "--report", help=(
        "A deviation report of transcribe --score (.csv/.json): mark missed, extra and wrong-pitch notes.")),
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Draw a MIDI file as a piano roll PNG: notes as bars coloured by velocity, the sustain pedal as a band.

    Notes are drawn with their written (key) durations; the orange band under the lowest note shows when the
    sustain pedal (CC64 >= 64) is down. Prints the path of the PNG (a JSON object with --json).
    """
    from maestro_cli import display as plots
    from maestro_cli.symbolic.midi import read_midi

    if not midi.is_file():
        raise MaestroError("no such file", midi)
    if report is not None:
        from maestro_cli.align.informed import read_report

        deviations = read_report(report)
    if start is not None and end is not None and end <= start:
        raise UsageError("--end must be after --start")
    target = output_path(midi, ".png", None, output, overwrite)
    if target.suffix.lower() != ".png":
        raise UsageError(f"the picture is a PNG; name the output *.png, not '{target.name}'")
    from maestro_cli.symbolic.scores import detect_format, performance_notes, read_score

    if detect_format(midi) == "midi":
        played = read_midi(midi)
        notes, (times, values) = played.notes, played.pedal()
    else:  # a score: its notes at the score's tempo, no pedal
        notes, times, values = performance_notes(read_score(midi).notes), [], []
    if not len(notes):
        raise MaestroError("no notes to draw", midi)
    last = float(notes["end_s"].max())
    pedals = pedal_intervals(times, values, last)
    lo = float(notes["start_s"].min()) if start is None else start
    hi = last if end is None else end
    keep = (notes["end_s"] >= lo) & (notes["start_s"] <= hi)
    if not keep.any():
        raise MaestroError(f"no notes between {lo:g} s and {hi:g} s", midi)
    notes = notes[keep]
    pedals = [(max(a, lo), min(b, hi)) for a, b in pedals if b >= lo and a <= hi]
    shown = [row for row in deviations if lo <= row["time_s"] <= hi] if report is not None else []
    plots.piano_roll(target, notes, pedals, title=midi.name, start=lo, end=hi, width=width, height=height,
                     deviations=shown)
    emit({"path": str(target), "notes": int(len(notes)), "start_s": lo, "end_s": hi,
          **({"deviations": len(shown)} if report is not None else {})} if as_json else target, as_json)
