"""Scores for alignment: MusicXML (``.musicxml``, ``.xml``, compressed ``.mxl``), MEI, Humdrum **kern and MIDI.

The format is decided by the file's content, not its name. MusicXML, MEI and kern are read with partitura
(ties merged, grace notes kept, ids of the file kept); MIDI with symusic. A score is a :class:`Score`: its notes
as a structured array of :data:`SCORE_DTYPE`, sorted by onset then pitch, where ``start_s``/``end_s`` are the
times at the score's own tempo (its tempo marks; 120 quarters per minute before the first, or for files
without any) and ``onset_beats`` counts beats of the time signature. Repeats: :func:`score_variants` gives the
score as written and, when it has repeats (voltas, da capo), unfolded the way partitura does it maximally.
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
import zipfile
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from maestro_cli.errors import MaestroError
from maestro_cli.symbolic.midi import file_head, is_midi

SCORE_DTYPE = np.dtype([("id", "U64"), ("pitch", np.uint8), ("onset_beats", np.float64),
                        ("duration_beats", np.float64), ("onset_quarters", np.float64),
                        ("duration_quarters", np.float64), ("start_s", np.float64), ("end_s", np.float64),
                        ("measure", np.int32), ("grace", bool), ("velocity", np.uint8)])
FORMATS = ("musicxml", "mxl", "mei", "kern", "midi")
DEFAULT_QPM = 120.0  # quarters per minute before the first tempo mark
GRACE_S = 0.08  # a grace note lasts this long in seconds (it has no written duration)
VELOCITY = 64  # scores have no dynamics in velocity terms: mezzo-forte
QPM_RANGE = (10.0, 1000.0)  # tempo marks outside this many quarter notes per minute are ignored (typos, placeholders)

log = logging.getLogger(__name__)


@dataclass
class Score:
    """The notes of one version of a score (as written, or unfolded), with where they came from."""

    notes: np.ndarray  # SCORE_DTYPE
    path: Path
    format: str
    variant: str = "plain"  # or "unfolded"
    part: Any = field(default=None, repr=False)  # the partitura Part (MusicXML/MEI/kern), for match files


def detect_format(path: Path | str) -> str:
    """One of :data:`FORMATS`, from the first bytes of the file."""
    path = Path(path)
    head = file_head(path, 4096)
    if is_midi(head):
        return "midi"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                if "META-INF/container.xml" in archive.namelist():
                    return "mxl"
        except zipfile.BadZipFile:
            pass
        raise MaestroError("a zip archive, but not a compressed MusicXML score (.mxl)", path)
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff")
    if "<score-partwise" in text or "<score-timewise" in text or "MusicXML" in text:
        return "musicxml"
    if "<mei" in text:
        return "mei"
    if any(line.startswith("**kern") for line in text.splitlines()[:50]):
        return "kern"
    raise MaestroError("not a score (expected MusicXML, .mxl, MEI, Humdrum **kern or MIDI)", path)


def read_score(path: Path | str, unfold: bool = False) -> Score:
    """The score's notes; with ``unfold``, repeats played out (the same notes if there are none)."""
    return _fresh(Path(path), with_unfolded=unfold)[-1]


def score_variants(path: Path | str) -> list[Score]:
    """The score as written and, if repeats make the unfolded score differ, the unfolded score."""
    return _fresh(Path(path), with_unfolded=True)


def import_partitura():
    """partitura, imported without its optional miditok tokenizers (whose import loads torch: about half of
    partitura's import time, for a feature this package never uses)."""
    if "partitura" not in sys.modules and "miditok" not in sys.modules:
        sys.modules["miditok"] = None  # makes partitura's ``try: import miditok`` fail fast
        try:
            import partitura
        finally:
            del sys.modules["miditok"]
    import partitura

    return partitura


def _fresh(path: Path, with_unfolded: bool) -> list[Score]:
    """The variants, parsed once per file version (a batch aligns many performances to one score); the caller
    gets its own copy of the notes."""
    if not path.is_file():
        return _variants(path, with_unfolded)  # the reader's error
    stat = path.stat()
    variants = _cached_variants(path.resolve(), stat.st_mtime_ns, stat.st_size, with_unfolded)
    return [replace(score, path=path, notes=score.notes.copy()) for score in variants]


@lru_cache(maxsize=4)
def _cached_variants(path: Path, mtime_ns: int, size: int, with_unfolded: bool) -> list[Score]:
    return _variants(path, with_unfolded)


def _variants(path: Path, with_unfolded: bool) -> list[Score]:
    fmt = detect_format(path)
    if fmt == "midi":
        return [Score(_midi_notes(path), path, fmt)]
    part = _load_part(path, fmt)
    plain = Score(_checked(_part_notes(part, path), path), path, fmt, "plain", part)
    if not with_unfolded:
        return [plain]
    pt = import_partitura()

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            unfolded_part = pt.score.unfold_part_maximal(part, update_ids=True)
    except RecursionError:  # partitura's path search on very complex repeat structures
        return [plain]
    notes = _part_notes(unfolded_part, path, warn=False)
    if len(notes) == len(plain.notes):
        return [plain]
    return [plain, Score(_checked(notes, path), path, fmt, "unfolded", unfolded_part)]


def _checked(notes: np.ndarray, path: Path) -> np.ndarray:
    if len(notes) == 0:
        raise MaestroError("score holds no notes: nothing to align", path)
    return notes


def _load_part(path: Path, fmt: str):
    """One partitura Part with all parts of the score merged (voices renumbered)."""
    pt = import_partitura()

    loaders = {"musicxml": pt.load_musicxml, "mxl": pt.load_musicxml, "mei": pt.load_mei, "kern": pt.load_kern}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = loaders[fmt](str(path), **({} if fmt == "mei" else {"force_note_ids": "keep"}))
            parts = list(score.parts)
            if not parts:
                raise ValueError("no parts")
            part = parts[0] if len(parts) == 1 else pt.score.merge_parts(parts)
            seen: set[str] = set()
            for number, note in enumerate(part.notes):  # ids the file does not give: n<k> in reading order
                note.id = note.id or f"n{number}"
                if note.id in seen:  # partitura's kern reader gives the notes of a chord one id
                    note.id = f"{note.id}-n{number}"
                seen.add(note.id)
            return part
    except MaestroError:
        raise
    except Exception as exc:  # noqa: BLE001 - lxml, partitura and the kern/MEI parsers raise many types
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise MaestroError(f"not a readable {fmt} score ({reason})", path) from None


def _part_notes(part, path: Path, warn: bool = True) -> np.ndarray:
    """SCORE_DTYPE notes of a partitura Part (ties merged), seconds from its tempo marks (those outside
    :data:`QPM_RANGE` ignored, with a warning naming ``path`` and the measure when ``warn``)."""
    pt = import_partitura()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        array = part.note_array()  # (include_grace_notes=True fails on grace chords in partitura 1.9)
        grace = {note.id for note in part.notes_tied if isinstance(note, pt.score.GraceNote)}
        measures = np.asarray(part.measure_number_map(array["onset_div"]), dtype=np.int32) if len(array) else []
        tempos = _tempo_marks(part, path, warn)
    notes = np.zeros(len(array), SCORE_DTYPE)
    notes["id"], notes["pitch"] = array["id"], array["pitch"]
    notes["onset_beats"], notes["duration_beats"] = array["onset_beat"], array["duration_beat"]
    notes["onset_quarters"], notes["duration_quarters"] = array["onset_quarter"], array["duration_quarter"]
    notes["measure"], notes["velocity"] = measures, VELOCITY
    notes["grace"] = [note_id in grace for note_id in array["id"]]
    seconds = quarter_clock(tempos)
    notes["start_s"] = seconds(notes["onset_quarters"])
    notes["end_s"] = np.where(notes["grace"], notes["start_s"] + GRACE_S,
                              seconds(notes["onset_quarters"] + notes["duration_quarters"]))
    return merge_unisons(_sort(notes))


def _tempo_marks(part, path: Path, warn: bool) -> list[tuple[float, float]]:
    """``(quarter, quarters per minute)`` of the part's tempo marks within :data:`QPM_RANGE`."""
    pt = import_partitura()

    marks = []
    for tempo in part.iter_all(pt.score.Tempo):
        try:
            qpm = float(pt.score.to_quarter_tempo(tempo.unit or "q", tempo.bpm))
        except (ArithmeticError, ValueError, TypeError, KeyError):
            qpm = float("nan")
        if QPM_RANGE[0] <= qpm <= QPM_RANGE[1]:
            marks.append((float(part.quarter_map(tempo.start.t)), qpm))
        elif warn:
            measure = int(part.measure_number_map(tempo.start.t))
            log.warning(f"warning: {path}: measure {measure}: tempo mark of {tempo.bpm:g} "
                        f"{'quarter notes' if (tempo.unit or 'q') == 'q' else tempo.unit} per minute ignored "
                        f"(outside {QPM_RANGE[0]:g}-{QPM_RANGE[1]:g} quarter notes per minute)")
    return marks


def quarter_clock(tempos: list[tuple[float, float]]):
    """A function mapping quarter positions to seconds for ``(quarter, quarters per minute)`` tempo marks."""
    marks = sorted({q: qpm for q, qpm in tempos if qpm > 0}.items())
    if not marks or marks[0][0] > 0:
        marks.insert(0, (0.0, marks[0][1] if marks else DEFAULT_QPM))
    quarters = np.array([q for q, _ in marks])
    spq = np.array([60.0 / qpm for _, qpm in marks])
    origin = np.concatenate([[0.0], np.cumsum(np.diff(quarters) * spq[:-1])])

    def seconds(q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=np.float64)
        segment = np.clip(np.searchsorted(quarters, q, side="right") - 1, 0, len(quarters) - 1)
        return origin[segment] + (q - quarters[segment]) * spq[segment]

    return seconds


def _midi_notes(path: Path) -> np.ndarray:
    """SCORE_DTYPE notes of a MIDI score: seconds from its tempo map, beats and bars from its time signatures."""
    from maestro_cli.symbolic.midi import parse_midi, tick_clock

    midi = parse_midi(path)
    seconds = tick_clock(midi.tempos.numpy(), midi.tpq)
    rows = [track.notes.numpy() for track in midi.tracks if not track.is_drum]
    rows = [r for r in rows if len(r)]
    if not rows:
        raise MaestroError("MIDI file holds no notes: nothing to align", path)
    arrays = {key: np.concatenate([r[key] for r in rows]) for key in ("time", "duration", "pitch", "velocity")}
    keep = (arrays["velocity"] > 0) & (arrays["pitch"] >= 21) & (arrays["pitch"] <= 108)
    if not keep.any():
        raise MaestroError("MIDI file holds no notes: nothing to align", path)
    start, duration = arrays["time"][keep].astype(np.int64), arrays["duration"][keep].astype(np.int64)
    notes = np.zeros(int(keep.sum()), SCORE_DTYPE)
    notes["pitch"], notes["velocity"] = arrays["pitch"][keep], arrays["velocity"][keep]
    notes["start_s"], notes["end_s"] = seconds(start), seconds(start + duration)
    tpq = max(int(midi.tpq), 1)
    notes["onset_quarters"], notes["duration_quarters"] = start / tpq, duration / tpq
    signatures = [(int(ts.time) / tpq, int(ts.numerator), int(ts.denominator)) for ts in midi.time_signatures]
    notes["onset_beats"], notes["measure"] = beats_and_measures(notes["onset_quarters"], signatures)
    end_beats, _ = beats_and_measures(notes["onset_quarters"] + notes["duration_quarters"], signatures)
    notes["duration_beats"] = end_beats - notes["onset_beats"]
    notes = merge_unisons(_sort(notes))
    notes["id"] = [f"n{k}" for k in range(len(notes))]
    return notes


def beats_and_measures(quarters: np.ndarray, signatures: list[tuple[float, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Beat positions (of the time signature's beat unit) and 1-based bar numbers of quarter positions."""
    marks = sorted({q: (num, den) for q, num, den in signatures if num > 0 and den > 0}.items())
    if not marks or marks[0][0] > 0:
        marks.insert(0, (0.0, marks[0][1] if marks else (4, 4)))
    beats, bars = np.zeros(len(quarters)), np.ones(len(quarters), np.int32)
    beat0, bar0 = 0.0, 1.0
    for k, (q0, (num, den)) in enumerate(marks):
        q1 = marks[k + 1][0] if k + 1 < len(marks) else np.inf
        inside = (quarters >= q0) & (quarters < q1)
        bar_quarters = num * 4.0 / den
        beats[inside] = beat0 + (quarters[inside] - q0) * den / 4.0
        bars[inside] = (bar0 + np.floor((quarters[inside] - q0) / bar_quarters + 1e-9)).astype(np.int32)
        if np.isfinite(q1):
            beat0 += (q1 - q0) * den / 4.0
            bar0 += np.ceil((q1 - q0) / bar_quarters - 1e-9)
    return beats, bars


def _sort(notes: np.ndarray) -> np.ndarray:
    """By onset, then pitch, then the longer first: of two unison notes a pianist plays the longer, and note
    matching, closest first, prefers the earlier of equally close score notes."""
    return notes[np.lexsort((-notes["duration_quarters"], notes["pitch"], notes["start_s"]))]


def merge_unisons(notes: np.ndarray) -> np.ndarray:
    """Sorted score notes with each doubled unison (two voices on one key at the same onset, partitura's
    ``...voice_overlap`` notes) merged into one: a key is struck once at a time. The merged note keeps the id the file
    gives it (not partitura's ``voice_overlap`` copy) and lasts as long as the longer of the two."""
    if len(notes) < 2:
        return notes
    same = (notes["pitch"][1:] == notes["pitch"][:-1]) & np.isclose(notes["onset_quarters"][1:],
                                                                      notes["onset_quarters"][:-1], atol=1e-6)
    same &= ~notes["grace"][1:] & ~notes["grace"][:-1]
    if not same.any():
        return notes
    group = np.concatenate([[0], np.cumsum(~same)])  # notes of one key at one onset share a group number
    keep = np.concatenate([[True], ~same])
    merged = notes[keep].copy()
    for name in ("duration_quarters", "duration_beats", "end_s"):
        merged[name] = np.maximum.reduceat(notes[name], np.flatnonzero(keep))
    for k in np.flatnonzero(np.bincount(group) > 1):  # the id the file gives, not the "voice_overlap" copy's
        ids = [str(i) for i in notes["id"][group == k]]
        merged["id"][k] = next((i for i in ids if not i.endswith("voice_overlap")), ids[0])
    return merged


def performance_notes(notes: np.ndarray) -> np.ndarray:
    """The score notes as :data:`maestro_cli.symbolic.notes.NOTE_DTYPE` (for features, note matching, MIDI)."""
    from maestro_cli.symbolic.notes import make_notes

    return make_notes(notes["pitch"], notes["start_s"], notes["end_s"], notes["velocity"])


def write_midi(score: Score, target: Path | str) -> None:
    """Write the score's notes as a one-track MIDI file at the score's tempo (to render or re-time it)."""
    from maestro_cli.symbolic.midi import write_midi as write_note_list

    notes = performance_notes(score.notes)
    notes["end_s"] = np.maximum(notes["end_s"], notes["start_s"] + 1e-3)
    write_note_list(notes, target)


def score_metadata(path: Path | str) -> dict:
    """The piece's ``title`` and ``composer`` as the score file gives them (``None`` where it does not).

    MusicXML: the work and movement titles and the composer creator, else the title page credits (credit types, or
    the first page's largest text, copyright lines aside, for the title and the first right-aligned text for the
    composer); MEI: the title statement; kern: the ``!!!OTL``/``!!!COM`` records; MIDI scores carry neither.
    """
    path = Path(path)
    fmt = detect_format(path)
    try:
        if fmt == "kern":
            return _kern_metadata(path.read_text(encoding="utf-8", errors="ignore"))
        if fmt == "midi":
            return {"title": None, "composer": None}
        return _xml_metadata(_xml_bytes(path, fmt), fmt)
    except Exception:  # noqa: BLE001 - metadata is optional: a score partitura reads but this does not has none
        return {"title": None, "composer": None}


def _xml_bytes(path: Path, fmt: str) -> bytes:
    if fmt != "mxl":
        return path.read_bytes()
    import xml.etree.ElementTree as ET

    with zipfile.ZipFile(path) as archive:
        container = ET.fromstring(archive.read("META-INF/container.xml"))
        rootfile = next(e for e in container.iter() if e.tag.rsplit("}", 1)[-1] == "rootfile")
        return archive.read(rootfile.get("full-path"))


def _xml_metadata(data: bytes, fmt: str) -> dict:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(data)
    elements = [(e.tag.rsplit("}", 1)[-1], e) for e in root.iter() if isinstance(e.tag, str)]

    def text(element) -> str | None:
        value = " ".join("".join(element.itertext()).split())
        return value or None

    if fmt == "mei":
        titles = [text(e) for tag, e in elements if tag == "title"]
        composers = [text(e) for tag, e in elements if tag in ("composer", "persName")
                     and (tag == "composer" or e.get("role") == "composer")]
        return {"title": next(filter(None, titles), None), "composer": next(filter(None, composers), None)}
    by_tag = {}
    for tag, e in elements:
        by_tag.setdefault(tag, []).append(e)
    title = next(filter(None, (text(e) for tag in ("work-title", "movement-title") for e in by_tag.get(tag, []))),
                 None)
    composer = next(filter(None, (text(e) for e in by_tag.get("creator", []) if e.get("type") == "composer")), None)
    credits = [(c, [w for w in c if w.tag.rsplit("}", 1)[-1] == "credit-words"]) for c in by_tag.get("credit", [])]
    typed = {text(t): words for c, words in credits for t in c if t.tag.rsplit("}", 1)[-1] == "credit-type"}
    if title is None and typed.get("title"):
        title = text(typed["title"][0])
    if composer is None and typed.get("composer"):
        composer = text(typed["composer"][0])
    words = [w for c, ws in credits for w in ws if c.get("page", "1") == "1" and text(w)
             and not re.search(r"copyright|\u00a9|\(c\)", text(w), re.I)]
    if title is None and words:
        title = text(max(words, key=lambda w: float(w.get("font-size") or 0)))
    if composer is None:
        composer = next((text(w) for w in words if w.get("justify") == "right"), None)
    return {"title": title, "composer": composer}


def _kern_metadata(text: str) -> dict:
    records = {}
    for line in text.splitlines():
        if line.startswith("!!!") and ":" in line:
            key, value = line[3:].split(":", 1)
            records.setdefault(key.strip(), value.strip())
    return {"title": records.get("OTL") or records.get("OPT") or None, "composer": records.get("COM") or None}
