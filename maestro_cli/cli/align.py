"""Stage ``align``: synchronise performances (audio or MIDI) with their scores (MusicXML, MEI, kern or MIDI)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.audio.io import AUDIO_SUFFIXES
from maestro_cli.batch.files import input_problem
from maestro_cli.cli.batch import BatchFlags, batch_entries, run_files, split_executor_options
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
from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.protocols import Alignment, BatchJob
from maestro_cli.registry import create_backend, get_backend

NAME = "align"


FORMATS = ("csv", "json", "midi", "notes", "match")
#: The transcriber refining audio maps unless --transcriber names another: the fastest good one.
REFINE_TRANSCRIBER = "onsets-frames"
#: The names ``-o`` may give each format's file.
FILE_SUFFIXES = {"csv": (".csv",), "json": (".json",), "midi": (".mid", ".midi"), "notes": (".csv",),
                 "match": (".match",)}
#: Performances a folder contributes to a batch (a performance's kind is then told by its content).
PERFORMANCE_SUFFIXES = (".mid", ".midi", *AUDIO_SUFFIXES)


def command(
    inputs: Optional[List[str]] = typer.Argument(None, help=(
        "Performances (audio or MIDI), folders of them, manifests (.txt, or .jsonl lines that may name their own "
        "\"score\"), or paths on stdin.")),
    score: Optional[Path] = typer.Option(None, "--score", help=(
        "The score: MusicXML (.musicxml, .xml, .mxl), MEI, kern or MIDI; in a batch, of every performance whose "
        "manifest line names none.")),
    out_dir: Optional[Path] = OUT_DIR,
    out_file: Optional[Path] = OUTPUT,
    options: Optional[List[str]] = OPTIONS,
    out_format: str = typer.Option("csv", "--format", help=(
        "csv (score_time_s,performance_time_s + JSON sidecar), json, midi (score re-timed), "
        "notes (one row per score note and extra note), or match (match file).")),
    transcriber: Optional[str] = typer.Option(None, "--transcriber", help=(
        "Audio performances: the transcriber whose note onsets refine the map (aligners with -O refine, default "
        f"{REFINE_TRANSCRIBER}) and whose notes --format notes/match pairs with the score (default: the same, or "
        "the best installed with -O refine=false).")),
    backend: Optional[str] = BACKEND,
    overwrite: bool = OVERWRITE,
    skip_existing: bool = SKIP_EXISTING,
    jobs: Optional[int] = JOBS,
    executor: Optional[str] = EXECUTOR,
    manifest: Optional[Path] = MANIFEST,
    as_json: bool = JSON,
) -> None:
    """Align performances (audio or MIDI) to their scores; prints the path of each alignment."""
    if out_format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not '{out_format}'")
    if out_file is not None and not out_file.name.lower().endswith(FILE_SUFFIXES[out_format]):
        raise UsageError(f"-o {out_file.name} does not fit --format {out_format}: name a "
                         f"{' or '.join(FILE_SUFFIXES[out_format])} file, or pick the --format of that file")
    options = options or []
    flags = BatchFlags(jobs, executor, manifest, skip_existing, overwrite, as_json)
    options, executor_options = split_executor_options(flags, options)
    entries = batch_entries(inputs, PERFORMANCE_SUFFIXES, ("score",))
    pairs = [(path, fields.get("score", score)) for path, fields in entries]
    if any(paired is None for _, paired in pairs):
        missing = next(path for path, paired in pairs if paired is None)
        raise UsageError(f"no score for {missing}: give --score, or a \"score\" on its JSON manifest line")
    if score is not None and (problem := input_problem(score)) is not None:
        raise problem
    single_output(out_file, [path for path, _ in pairs], out_dir)
    from maestro_cli.align.io import output_paths, write_alignment

    if len(pairs) == 1 and not (jobs or executor or manifest or skip_existing):
        performance, paired = pairs[0]
        aligning = PairAligner(backend, options, transcriber)
        result = aligning.align(performance, paired, out_format)
        target = out_file or (output_paths(performance, out_format, out_dir)[0] if out_dir else None)
        emit(write_alignment(result, performance, paired, out_format, target, overwrite), as_json)
        return
    from maestro_cli.registry import parse_options

    parse_options(get_backend("aligner", backend), options)  # a bad -O is a usage error before any work
    sources = [(path, {"score": paired}) for path, paired in pairs
               if path.resolve() != paired.resolve()]  # a folder of performances may hold their score
    if not sources:
        raise UsageError("no performance to align besides the score itself")
    job = BatchJob(partial(PairAligner, backend, options, transcriber), partial(align_one, out_format=out_format))
    run_files("align", sources, lambda source: output_paths(source[0], out_format, out_dir, out_file), job, flags,
              executor_options)


class PairAligner:
    """A worker's aligner, built once, and the transcriber that gives audio performances their notes (to refine
    the map, for aligners that want one, and for ``--format notes``/``match``), built on first use."""

    def __init__(self, backend: str | None, options: list[str], transcriber: str | None):
        self.aligner = create_backend("aligner", backend, options)
        self.refines = getattr(self.aligner, "uses_transcriber", False)
        self.transcriber_name = transcriber or (REFINE_TRANSCRIBER if self.refines else None)
        self.transcriber = None

    def _transcriber(self):
        if self.transcriber is None:
            chosen = get_backend("transcriber", self.transcriber_name)
            self.transcriber, self.transcriber_name = chosen.create([]), chosen.name
        return self.transcriber

    def align(self, performance: Path, score: Path, out_format: str) -> Alignment:
        """Align ``performance`` (audio or MIDI, told by its content) to ``score``."""
        from maestro_cli.align.io import detect_kind
        from maestro_cli.align.transcribed import note_alignment

        kind = detect_kind(performance)
        if kind == "audio" and self.refines:
            self.aligner.transcriber = self._transcriber()
        result = self.aligner.align(performance, score, kind=kind)
        if kind == "audio" and self.refines:
            result.info["transcriber"] = self.transcriber_name
        if out_format in ("notes", "match") and result.notes is None and kind == "audio":
            result.notes = note_alignment(result, performance, score, self._transcriber())
            result.info["transcriber"] = self.transcriber_name
        if result.notes is not None and kind == "audio":
            result.info.update(result.notes.counts())
        warn_if_unlikely(result, performance, score)
        return result


def warn_if_unlikely(result: Alignment, performance: Path, score: Path) -> None:
    """The warning of ``transcribe --score``, on stderr, when the alignment's confidence says the score is probably
    of another piece (below :data:`maestro_cli.align.informed.MIN_CONFIDENCE`); the alignment is written anyway."""
    from maestro_cli.align.informed import MIN_CONFIDENCE

    confidence = result.info.get("confidence")
    if isinstance(confidence, (int, float)) and confidence < MIN_CONFIDENCE:
        console.print(f"warning: {score}: low alignment confidence {confidence:.2f} for {performance} (a score of "
                      "another piece?); writing the alignment anyway", markup=False, highlight=False, soft_wrap=True)


def align_one(aligning: PairAligner, item: tuple[tuple[Path, dict[str, Path]], tuple[Path, ...]], *,
              out_format: str) -> None:
    """One batch item: align a performance to its score and write the alignment (runs in a worker)."""
    from maestro_cli.align.io import write_alignment

    (performance, fields), targets = item
    if not fields["score"].is_file():
        raise MaestroError("no such file", fields["score"])
    result = aligning.align(performance, fields["score"], out_format)
    write_alignment(result, performance, fields["score"], out_format, targets[0], overwrite=True)
