"""Alignment files: CSV ``score_time_s,performance_time_s`` + JSON sidecar, JSON, the re-timed score MIDI,
and the note-level notes CSV (+ sidecar) and match file (:mod:`maestro_cli.align.notes`).

Also tells audio from MIDI by the file's first bytes, not its name.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from maestro_cli.errors import MaestroError
from maestro_cli.outputs import atomic_output, atomic_outputs, atomic_write_bytes, output_path, refuse_existing
from maestro_cli.symbolic.midi import file_head, is_midi

_AUDIO_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"FORM", b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")
_EXTENSIONS = {"csv": ".csv", "json": ".json", "midi": ".mid", "notes": ".notes.csv", "match": ".match"}
CSV_HEADER = ("score_time_s", "performance_time_s")


def detect_kind(path: Path | str) -> str:
    """``"midi"`` or ``"audio"`` from the file's content (MIDI magic ``MThd``, RIFF/fLaC/OggS/...)."""
    head = file_head(path, 12)
    if is_midi(head):
        return "midi"
    if head.startswith(_AUDIO_MAGIC):
        return "audio"
    raise MaestroError("neither audio (WAV, FLAC, OGG, AIFF, MP3) nor a MIDI file", path)


def sidecar_path(csv_path: Path) -> Path:
    """``x.aligned.csv`` -> ``x.aligned.meta.json``."""
    return csv_path.with_suffix(".meta.json")


def output_paths(performance: Path, out_format: str, out_dir: Path | None = None,
                 out_file: Path | None = None) -> tuple[Path, ...]:
    """The files :func:`write_alignment` writes for ``performance``: the alignment (default name
    ``<out_dir or cwd>/<performance stem>.aligned.<ext>``), then for csv and notes its sidecar."""
    target = output_path(Path(performance), ".aligned" + _EXTENSIONS[out_format], out_dir, out_file, overwrite=True)
    return (target, sidecar_path(target)) if out_format in ("csv", "notes") else (target,)


def _checked(score_times: Any, performance_times: Any,
             where: Path | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(score_times, dtype=np.float64)
    p = np.asarray(performance_times, dtype=np.float64)
    if s.ndim != 1 or s.shape != p.shape or len(s) < 2:
        raise MaestroError("an alignment needs at least two (score, performance) time pairs", where)
    if not (np.isfinite(s).all() and np.isfinite(p).all()):
        raise MaestroError("alignment holds NaN or infinite times", where)
    if not ((np.diff(s) > 0).all() and (np.diff(p) > 0).all()):
        raise MaestroError("alignment times are not strictly increasing", where)
    return s, p


def metadata(result: Any, performance: Path, score: Path) -> dict[str, Any]:
    """The sidecar content: the backend's info plus the two files and the number of points."""
    return {**result.info, "performance": str(performance), "score": str(score),
            "points": int(len(result.score_times))}


def write_alignment(result: Any, performance: Path, score: Path, out_format: str = "csv",
                    out_file: Path | None = None, overwrite: bool = False) -> Path:
    """Write ``result`` (an :class:`~maestro_cli.protocols.Alignment`); default name
    ``<performance stem>.aligned.<ext>`` in the current directory. Returns the path written."""
    if out_format not in _EXTENSIONS:
        raise MaestroError(f"unknown alignment format '{out_format}' (csv, json, midi, notes, match)")
    s, p = _checked(result.score_times, result.performance_times)
    if out_format in ("notes", "match") and getattr(result, "notes", None) is None:
        raise MaestroError(f"backend '{result.info.get('backend')}' gives no note-level alignment", performance)
    target = output_path(Path(performance), ".aligned" + _EXTENSIONS[out_format], out_file=out_file,
                         overwrite=overwrite)
    meta = metadata(result, performance, score)
    if out_format in ("csv", "notes"):
        from maestro_cli.align.notes import format_csv as format_notes

        sidecar = sidecar_path(target)
        refuse_existing(sidecar, overwrite)
        with atomic_outputs(target, sidecar) as (tmp, tmp_sidecar):  # the alignment and its sidecar, or neither
            tmp.write_text(format_csv(s, p) if out_format == "csv" else format_notes(result.notes), encoding="utf-8")
            tmp_sidecar.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    elif out_format == "match":
        from maestro_cli.align.notes import match_text

        atomic_write_bytes(target, match_text(result.notes, performance).encode())
    elif out_format == "json":
        record = {**meta, "score_time_s": [round(float(x), 6) for x in s],
                  "performance_time_s": [round(float(x), 6) for x in p]}
        atomic_write_bytes(target, (json.dumps(record) + "\n").encode())
    elif getattr(result, "score", None) is not None and result.score.format != "midi":
        import tempfile

        from maestro_cli.symbolic.scores import write_midi

        with tempfile.TemporaryDirectory() as folder:
            midi = Path(folder) / "score.mid"
            write_midi(result.score, midi)
            retime_midi(midi, s, p, target)
    else:
        retime_midi(score, s, p, target)
    return target


def format_csv(score_times: np.ndarray, performance_times: np.ndarray) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows((f"{a:.6f}", f"{b:.6f}") for a, b in zip(score_times, performance_times))
    return out.getvalue()


def read_alignment(path: Path | str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(score_times, performance_times, info)`` from an alignment CSV (with its sidecar, if any) or JSON."""
    path = Path(path)
    if not path.is_file():
        raise MaestroError("no such file", path)
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.lstrip().startswith("{"):
        try:
            record = json.loads(text)
            s, p = record.pop("score_time_s"), record.pop("performance_time_s")
        except (json.JSONDecodeError, KeyError, AttributeError):
            raise MaestroError("not an alignment JSON (needs score_time_s and performance_time_s)", path) from None
        return (*_checked(s, p, path), record)
    rows = [row for row in csv.reader(io.StringIO(text)) if row and not row[0].startswith("#")]
    if rows and not _is_number(rows[0][0]):
        rows = rows[1:]
    try:
        values = np.array([[float(row[0]), float(row[1])] for row in rows], dtype=np.float64)
    except (ValueError, IndexError):
        raise MaestroError("not an alignment CSV (expected score_time_s,performance_time_s rows)", path) from None
    if len(values) == 0:
        raise MaestroError("alignment CSV holds no rows", path)
    sidecar = sidecar_path(path)
    info = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    return (*_checked(values[:, 0], values[:, 1], path), info)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def extended_map(score_times: np.ndarray, performance_times: np.ndarray, until: float) -> tuple[np.ndarray, np.ndarray]:
    """The map extended with the local tempo to score times 0 and ``until`` (performance times kept >= 0)."""
    s, p = list(score_times), list(performance_times)
    if s[0] > 0:
        slope = (p[1] - p[0]) / (s[1] - s[0])
        s.insert(0, 0.0)
        p.insert(0, max(0.0, p[0] - slope * s[1]))
    if until > s[-1]:
        slope = (p[-1] - p[-2]) / (s[-1] - s[-2])
        p.append(p[-1] + slope * (until - s[-1]))
        s.append(until)
    return np.asarray(s), np.asarray(p)


def retime_midi(score: Path, score_times: np.ndarray, performance_times: np.ndarray, target: Path) -> None:
    """Write the score MIDI with every event moved through the map (linear in between, local tempo outside)."""
    import warnings

    import pretty_midi

    try:
        midi = pretty_midi.PrettyMIDI(str(score))
    except Exception as exc:  # noqa: BLE001 - pretty_midi/mido raise many types
        raise MaestroError(f"not a readable MIDI file ({exc})", score) from None
    s, p = extended_map(score_times, performance_times, midi.get_end_time() + 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        midi.adjust_times(s, p)
    with atomic_output(target) as tmp:
        midi.write(str(tmp))
