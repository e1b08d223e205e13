"""Stage ``report``: a practice report, one self-contained HTML page per performance against its score."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path
from typing import List, Optional
from urllib.parse import quote

import typer

from maestro_cli.cli.batch import BatchFlags, batch_inputs, run_files, split_executor_options
from maestro_cli.cli.io import console, emit
from maestro_cli.cli.options import EXECUTOR, JOBS, MANIFEST, OUT_DIR, OUTPUT, OVERWRITE, SKIP_EXISTING
from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.outputs import atomic_output, output_path, refuse_existing
from maestro_cli.protocols import BatchJob
from maestro_cli.registry import create_backend, get_backend

NAME = "report"
AUDIO_MODES = ("embed", "link", "none")
INDEX = "index.html"


def command(
    inputs: Optional[List[str]] = typer.Argument(None, help=(
        "Performances: recordings (WAV, FLAC, ...) or MIDI files, folders of them, manifests (.txt/.jsonl), or "
        "paths on stdin; several give one page each and an index.html comparing them.")),
    score: Path = typer.Option(..., "--score", help="The score of the piece (MusicXML, .mxl, MEI, kern or MIDI)."),
    out_file: Optional[Path] = OUTPUT,
    out_dir: Optional[Path] = OUT_DIR,
    as_json: bool = typer.Option(False, "--json", help=(
        "Also write the report's data as <page stem>.json (schema in docs/report.md); stdout gets one JSON "
        "object per page instead of its path.")),
    transcriber: Optional[str] = typer.Option(None, "--transcriber", "-b", help=(
        "Recordings: the transcriber (default: the best installed).")),
    options: Optional[List[str]] = typer.Option(None, "--option", "-O", help=(
        "Transcriber option key=value for recordings (repeatable: -O threads=1); unknown keys are listed.")),
    aligner: Optional[str] = typer.Option(None, "--aligner", help="The aligner backend (default: the best installed)."),
    audio: str = typer.Option("embed", "--audio", help=(
        "embed: the recording (MIDI: rendered by the default renderer) inside the page as OGG; link: beside it "
        "(MIDI: <page stem>.ogg); none: no playback.")),
    overwrite: bool = OVERWRITE,
    skip_existing: bool = SKIP_EXISTING,
    jobs: Optional[int] = JOBS,
    executor: Optional[str] = EXECUTOR,
    manifest: Optional[Path] = MANIFEST,
) -> None:
    """Practice report: a performance against its score as one HTML page (piano roll, playback, tempo, errors)."""
    from maestro_cli.cli.align import PERFORMANCE_SUFFIXES

    if audio not in AUDIO_MODES:
        raise UsageError(f"--audio must be one of {', '.join(AUDIO_MODES)}, not '{audio}'")
    if not score.is_file():
        raise MaestroError("no such file", score)
    flags = BatchFlags(jobs, executor, manifest, skip_existing, overwrite, as_json)
    options, executor_options = split_executor_options(flags, options or [])
    paths = [path for path in batch_inputs(inputs, PERFORMANCE_SUFFIXES) if path.resolve() != score.resolve()]
    if not paths:
        raise UsageError("no performance to report on besides the score itself")
    get_backend("aligner", aligner)  # an unknown backend or option is a usage error before any work
    if options:
        from maestro_cli.registry import parse_options

        parse_options(get_backend("transcriber", transcriber), options)
    if out_file is not None and (len(paths) != 1 or out_dir is not None):
        raise UsageError("-o FILE takes exactly one performance and no --out-dir; use --out-dir for several")
    if len(paths) == 1 and not (jobs or executor or manifest or skip_existing):
        targets = planned(paths[0], out_file, out_dir, as_json, audio)
        for target in targets:
            refuse_existing(target, overwrite)
        maker = ReportMaker(transcriber, options, aligner, audio)
        maker.write(paths[0], score, targets, progress=True)
        emit(result(targets, as_json), as_json)
        return
    folder = out_dir or Path.cwd()
    index = folder / INDEX
    refuse_existing(index, overwrite or skip_existing)
    job = BatchJob(partial(ReportMaker, transcriber, options, aligner, audio), partial(report_one, score=score))
    plans = {path: planned(path, None, folder, as_json, audio) for path in paths}
    try:
        run_files("report", paths, plans.__getitem__, job, flags, executor_options,
                  partial(result, as_json=as_json))
    finally:
        write_index(index, [plans[path][0] for path in paths])


def planned(performance: Path, out_file: Path | None, out_dir: Path | None, as_json: bool,
            audio: str) -> tuple[Path, ...]:
    """The page, then its JSON data (with --json), then the rendered audio of a MIDI performance (--audio link)."""
    from maestro_cli.align.io import detect_kind

    page = output_path(performance, ".report.html", out_dir, out_file, True)
    out = [page]
    if as_json:
        out.append(page.with_suffix(".json"))
    if audio == "link" and performance.is_file() and detect_kind(performance) == "midi":
        out.append(page.with_suffix(".ogg"))
    return tuple(out)


def result(targets: tuple[Path, ...], as_json: bool) -> Path | dict:
    if not as_json:
        return targets[0]
    return {"path": str(targets[0]), "json": str(next(t for t in targets if t.suffix == ".json"))}


class ReportMaker:
    """A worker's aligner, built once; the transcriber (recordings) and renderer (MIDI, with audio) on first use."""

    def __init__(self, transcriber: str | None, options: list[str], aligner: str | None, audio: str):
        self.aligner_name = get_backend("aligner", aligner).name
        self.aligner = create_backend("aligner", aligner, [])
        self.transcriber_name, self.options, self.audio = transcriber, options, audio
        self._transcriber = self._renderer = None

    def transcriber(self):
        if self._transcriber is None:
            chosen = get_backend("transcriber", self.transcriber_name)
            self._transcriber, self.transcriber_name = chosen.create(self.options), chosen.name
        return self._transcriber

    def renderer(self):
        if self._renderer is None:
            self._renderer = get_backend("renderer", None).create([])
        return self._renderer

    def write(self, performance: Path, score: Path, targets: tuple[Path, ...], progress: bool = False) -> None:
        """Analyse ``performance`` against ``score`` and write the page (and its JSON, and its audio)."""
        from maestro_cli.report import audio as sound
        from maestro_cli.report import page
        from maestro_cli.report.data import performance_report

        data, paired = performance_report(performance, score, self.aligner, self.transcriber)
        data["backends"] = {"aligner": self.aligner_name}
        if paired.kind == "audio":
            data["backends"]["transcriber"] = self.transcriber_name
        if data["warning"]:
            console.print(f"warning: {score}: {data['warning']}", markup=False, highlight=False, soft_wrap=True)
        source = None
        if self.audio != "none":
            if paired.kind == "midi":
                data["backends"]["renderer"] = get_backend("renderer", None).name
                encoded = sound.rendered(self.renderer(), performance)
                if self.audio == "link":
                    with atomic_output(targets[-1]) as tmp:
                        tmp.write_bytes(encoded)
                    source = page.audio_source(link=_link(targets[-1], targets[0]))
                else:
                    source = page.audio_source(encoded, sound.MIME)
            elif self.audio == "link":
                source = page.audio_source(link=_link(performance, targets[0]))
            else:
                source = page.audio_source(sound.recording(performance), sound.MIME)
        if len(targets) > 1 and targets[1].suffix == ".json":
            with atomic_output(targets[1]) as tmp:
                tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        with atomic_output(targets[0]) as tmp:
            tmp.write_text(page.render(data, source), encoding="utf-8")
        if progress:
            s = data["summary"]
            console.print(f"{performance.name}: {s['correct']} of {s['score_notes']} score notes as written, "
                          f"{s['missed']} missed, {s['extra']} extra, {s['wrong_pitch']} wrong pitch; tempo "
                          f"{s['tempo_bpm']} bpm (score {s['marking_bpm']}); confidence {data['confidence']:.2f}",
                          markup=False, highlight=False, soft_wrap=True)


def report_one(maker: ReportMaker, item: tuple[Path, tuple[Path, ...]], *, score: Path) -> None:
    """One batch item: one performance's report (runs in a worker)."""
    performance, targets = item
    maker.write(performance, score, targets)


def write_index(index: Path, pages: list[Path]) -> None:
    """The index page comparing the reports written so far (pages that exist), atomically."""
    from maestro_cli.report.page import read_data, render_index

    entries = [(_link(page, index), read_data(page.read_text(encoding="utf-8"))) for page in pages if page.is_file()]
    if not entries:
        return
    with atomic_output(index) as tmp:
        tmp.write_text(render_index(entries), encoding="utf-8")
    console.print(f"index: {index}", markup=False, highlight=False, soft_wrap=True)


def _link(target: Path, page: Path) -> str:
    """A relative URL from ``page``'s folder to ``target``."""
    return quote(Path(os.path.relpath(Path(target).resolve(), Path(page).resolve().parent)).as_posix())
