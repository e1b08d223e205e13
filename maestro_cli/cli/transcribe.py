"""Stage ``transcribe``: audio to MIDI (and optionally a note CSV)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.audio.io import AUDIO_SUFFIXES
from maestro_cli.batch.files import input_problem
from maestro_cli.cli.batch import BatchFlags, backend_job, batch_inputs, run_files, split_executor_options
from maestro_cli.cli.io import console, emit
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
from maestro_cli.errors import UsageError
from maestro_cli.outputs import atomic_output, atomic_outputs, output_path, refuse_existing

NAME = "transcribe"
REPORT_SUFFIXES = (".csv", ".json")


def command(
    inputs: Optional[List[str]] = typer.Argument(
        None, help="Audio files (WAV, FLAC, ...), folders of them, manifests (.txt/.jsonl), or paths on stdin."),
    out_dir: Optional[Path] = OUT_DIR,
    out_file: Optional[Path] = OUTPUT,
    options: Optional[List[str]] = OPTIONS,
    notes_csv: bool = typer.Option(False, "--notes-csv",
                                   help="Also write <stem>.notes.csv (onset_s,offset_s,pitch,velocity)."),
    backend: Optional[str] = BACKEND,
    overwrite: bool = OVERWRITE,
    skip_existing: bool = SKIP_EXISTING,
    jobs: Optional[int] = JOBS,
    executor: Optional[str] = EXECUTOR,
    manifest: Optional[Path] = MANIFEST,
    as_json: bool = JSON,
    score: Optional[Path] = typer.Option(None, "--score", help=(
        "Score-informed: the score of the recording (MusicXML, .mxl, MEI, kern or MIDI); one recording only.")),
    report: Optional[Path] = typer.Option(None, "--report", help=(
        "With --score: write the deviations (missed, extra, wrong-pitch notes) to this .csv or .json file.")),
    aligner: Optional[str] = typer.Option(None, "--aligner", help="With --score: the aligner backend."),
) -> None:
    """Transcribe piano recordings to MIDI; prints the output paths."""
    options = options or []
    if score is None and (report is not None or aligner is not None):
        raise UsageError(f"{'--report' if report is not None else '--aligner'} needs --score, which is missing "
                         "(the score of the recording)")
    if report is not None and report.suffix.lower() not in REPORT_SUFFIXES:
        raise UsageError(f"--report must name a .csv or .json file, not '{report.name}'")
    if score is not None:
        if (problem := input_problem(score)) is not None:
            raise problem
        paths = batch_inputs(inputs, AUDIO_SUFFIXES)
        if len(paths) != 1 or notes_csv or jobs or executor or manifest or skip_existing:
            raise UsageError("--score (with --report, --aligner) takes exactly one recording and no batch options")
        target = output_path(paths[0], ".mid", out_dir, out_file, overwrite)
        refuse_existing(report, overwrite)
        transcribe_with_score(paths[0], score, target, report, backend, options, aligner)
        emit({"path": str(target), "report": str(report)} if as_json and report else target, as_json)
        return
    flags = BatchFlags(jobs, executor, manifest, skip_existing, overwrite, as_json)
    options, executor_options = split_executor_options(flags, options)
    paths = batch_inputs(inputs, AUDIO_SUFFIXES)
    single_output(out_file, paths, out_dir)

    def plan(audio: Path) -> tuple[Path, ...]:
        target = output_path(audio, ".mid", out_dir, out_file, True)
        return (target, output_path(target, ".notes.csv", target.parent, None, True)) if notes_csv else (target,)

    def result(targets: tuple[Path, ...]) -> Path | dict:
        return {"path": str(targets[0]), "notes_csv": str(targets[1])} if as_json and notes_csv else targets[0]

    run_files("transcribe", paths, plan, backend_job("transcriber", backend, options, transcribe_one), flags,
              executor_options, result)


def transcribe_one(transcriber, item: tuple[Path, tuple[Path, ...]]) -> None:
    """One batch item: transcribe ``audio`` into its MIDI (and note CSV) atomically (runs in a worker)."""
    from maestro_cli.audio.io import probe_audio

    audio, targets = item
    probe_audio(audio)  # a missing, empty or non-audio file fails here, before the model runs
    with atomic_outputs(*targets) as temps:  # the MIDI and its note CSV, or neither
        transcriber.transcribe(audio, temps[0], notes_csv=temps[1] if len(temps) > 1 else None)


def transcribe_with_score(audio: Path, score: Path, target: Path, report: Path | None, transcriber: str | None,
                          options: list[str], aligner: str | None) -> None:
    """Score-informed transcription (:func:`maestro_cli.align.transcribed.score_informed`) written to ``target``
    (and the deviations to ``report``); a score that does not fit leaves the blind transcription, with a warning."""
    from maestro_cli.align.informed import format_report
    from maestro_cli.align.transcribed import score_informed
    from maestro_cli.registry import create_backend
    from maestro_cli.symbolic.midi import write_midi

    run = score_informed(audio, score, create_backend("transcriber", transcriber, options),
                         create_backend("aligner", aligner, []))
    if run.result is None:
        console.print(f"warning: {score}: low alignment confidence {run.confidence:.2f} (a score of another piece?):"
                      f" writing the blind transcription{', no report' if report else ''}",
                      markup=False, highlight=False, soft_wrap=True)
        with atomic_output(target) as tmp:
            tmp.write_bytes(run.transcription.midi)
            if report is not None:  # --overwrite: a report of an earlier run must not describe this MIDI
                report.unlink(missing_ok=True)
        return
    with atomic_outputs(target, *([report] if report is not None else [])) as temps:  # both or neither
        write_midi(run.result.notes, temps[0], run.transcription.controls)
        if report is not None:
            temps[1].write_text(format_report(run.result, report), encoding="utf-8")
    counts = run.result.counts
    console.print(f"{audio.name}: {counts['confirmed'] + counts['recovered']} of {counts['score_notes']} score notes "
                  f"confirmed ({counts['recovered']} found among the transcriber's candidates), "
                  f"{counts['missed']} missed, {counts['extra']} extra, {counts['wrong_pitch']} wrong pitch "
                  f"(confidence {run.confidence:.2f})", markup=False, highlight=False, soft_wrap=True)
