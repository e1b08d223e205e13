"""Stage ``align``: synchronise a performance (audio or MIDI) with a score (MusicXML, MEI, kern or MIDI)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.cli.io import emit, read_inputs
from maestro_cli.cli.options import BACKEND, JSON, OUTPUT_OR_OPTIONS, OVERWRITE, split_output_and_options
from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.protocols import Alignment
from maestro_cli.registry import get_backend

NAME = "align"


FORMATS = ("csv", "json", "midi", "notes", "match")
#: Audio performances, note-level output: a transcribed note counts as the score note's if it has its pitch and
#: starts within this many seconds of the score note's time through the alignment.
AUDIO_NOTE_WINDOW = 0.1


def command(
    performance: Optional[str] = typer.Argument(None, help="Performance audio or MIDI (or its path on stdin)."),
    score: Path = typer.Option(..., "--score", help="The score: MusicXML (.musicxml, .xml, .mxl), MEI, kern or MIDI."),
    output: Optional[List[str]] = OUTPUT_OR_OPTIONS,
    out_format: str = typer.Option("csv", "--format", help=(
        "csv (score_time_s,performance_time_s + JSON sidecar), json, midi (score re-timed), "
        "notes (one row per score note and extra note), or match (match file).")),
    transcriber: Optional[str] = typer.Option(None, "--transcriber", help=(
        "Audio performances, --format notes/match: the transcriber whose notes are matched "
        "(default: the best installed).")),
    backend: Optional[str] = BACKEND,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Align a performance (audio or MIDI) to a score; prints the path of the alignment."""
    if out_format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not '{out_format}'")
    paths = read_inputs([performance] if performance else None)
    if len(paths) != 1:
        raise UsageError("align takes exactly one performance")
    out_file, options = split_output_and_options(output)
    if not score.is_file():
        raise MaestroError("no such file", score)
    aligner = get_backend("aligner", backend).create(options)
    from maestro_cli.align.io import detect_kind, write_alignment

    kind = detect_kind(paths[0])
    result = aligner.align(paths[0], score, kind=kind)
    if out_format in ("notes", "match") and result.notes is None and kind == "audio":
        result.notes, result.info["transcriber"] = transcribed_notes(result, paths[0], score, transcriber)
        result.info.update(result.notes.counts())
    target = write_alignment(result, paths[0], score, out_format, out_file, overwrite)
    emit(target, as_json)


def transcribed_notes(result: Alignment, audio: Path, score: Path, transcriber: str | None):
    """Note-level alignment of a recording: the transcriber's notes paired with the score notes mapped through
    the alignment (same pitch, onset within :data:`AUDIO_NOTE_WINDOW` s, closest first)."""
    import tempfile

    import numpy as np

    from maestro_cli.align.notes import from_time_map, read_performance
    from maestro_cli.symbolic.scores import read_score

    backend = get_backend("transcriber", transcriber)
    with tempfile.TemporaryDirectory() as folder:
        midi = Path(folder) / "transcription.mid"
        backend.create([]).transcribe(audio, midi)
        played = read_performance(midi)
    aligned = result.score if result.score is not None else read_score(score)
    notes = from_time_map(aligned, played, np.asarray(result.score_times), np.asarray(result.performance_times),
                          AUDIO_NOTE_WINDOW)
    return notes, backend.name
