"""Note-level alignments: which score note was played by which performance note, which were left out, added.

A :class:`NoteAlignment` pairs the notes of a score (:data:`maestro_cli.symbolic.scores.SCORE_DTYPE`) with
the notes of a performance (:data:`maestro_cli.symbolic.notes.NOTE_DTYPE`, key-release offsets, no pedal applied).
Files: the notes CSV (:data:`CSV_COLUMNS`, one row per score note, then one per inserted performance note) and
partitura's match format (Vienna 4x22, (n)ASAP). Both read back as a :class:`Reference`, the input of
:func:`maestro_cli.metrics.alignment.note_alignment_scores`.
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maestro_cli.errors import MaestroError

CSV_COLUMNS = ("score_id", "pitch", "score_onset_beats", "score_onset_s", "perf_onset_s", "perf_offset_s",
               "perf_velocity", "status")
STATUSES = ("match", "deletion", "insertion")


@dataclass
class NoteAlignment:
    """Score notes, performance notes and the matched pairs (index arrays of equal length)."""

    score: Any  # maestro_cli.symbolic.scores.Score
    performance: np.ndarray  # NOTE_DTYPE, sorted by onset then pitch
    score_index: np.ndarray
    performance_index: np.ndarray

    def counts(self) -> dict[str, int]:
        return {"matched_notes": int(len(self.score_index)),
                "deleted_notes": int(len(self.score.notes) - len(self.score_index)),
                "inserted_notes": int(len(self.performance) - len(self.performance_index))}

    def f_measure(self) -> float:
        """How much of the score and of the performance pair up (2 x pairs / all notes)."""
        return 2.0 * len(self.score_index) / max(1, len(self.score.notes) + len(self.performance))

    def rows(self) -> list[tuple]:
        """CSV rows: every score note once (in score order), then the insertions (in performance order)."""
        played = dict(zip(self.score_index.tolist(), self.performance_index.tolist()))
        out = []
        for k, note in enumerate(self.score.notes):
            base = (note["id"], int(note["pitch"]), f"{note['onset_beats']:.4f}", f"{note['start_s']:.6f}")
            if k in played:
                p = self.performance[played[k]]
                out.append((*base, f"{p['start_s']:.6f}", f"{p['end_s']:.6f}", int(p["velocity"]), "match"))
            else:
                out.append((*base, "", "", "", "deletion"))
        inserted = np.setdiff1d(np.arange(len(self.performance)), self.performance_index)
        for p in self.performance[inserted]:
            out.append(("", int(p["pitch"]), "", "", f"{p['start_s']:.6f}", f"{p['end_s']:.6f}",
                        int(p["velocity"]), "insertion"))
        return out

    def labels(self) -> list[dict]:
        """The alignment as partitura/parangonar dicts (performance ids ``n<k>`` in performance order)."""
        out = [{"label": "match", "score_id": str(self.score.notes["id"][s]), "performance_id": f"n{p}"}
               for s, p in zip(self.score_index, self.performance_index)]
        out += [{"label": "deletion", "score_id": str(note_id)}
                for note_id in np.delete(self.score.notes["id"], self.score_index)]
        out += [{"label": "insertion", "performance_id": f"n{p}"}
                for p in np.setdiff1d(np.arange(len(self.performance)), self.performance_index)]
        return out


def match_performance(score, played: np.ndarray, map_score: np.ndarray, map_performance: np.ndarray,
                      **options) -> tuple[np.ndarray, np.ndarray, NoteAlignment]:
    """``played`` paired with ``score``'s notes around a time map (:func:`note_matching.refine` with ``options``):
    the refined map and the note pairs."""
    from maestro_cli.align.note_matching import refine

    map_score, map_performance, matching = refine(score.notes, played, map_score, map_performance, **options)
    return map_score, map_performance, NoteAlignment(score, played, matching.score_index, matching.performance_index)


def from_time_map(score, performance: np.ndarray, map_score: np.ndarray, map_performance: np.ndarray,
                  window: float) -> NoteAlignment:
    """Pair each score note with the closest same-pitch performance note within ``window`` s of its mapped time."""
    from maestro_cli.align.note_matching import match_notes

    matching = match_notes(score.notes, performance, map_score, map_performance, window)
    return NoteAlignment(score, performance, matching.score_index, matching.performance_index)


def format_csv(alignment: NoteAlignment) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(alignment.rows())
    return out.getvalue()


def match_text(alignment: NoteAlignment, performance_path: Path) -> str:
    """The alignment as a match file (partitura's writer, match format 1.0.0)."""
    import tempfile

    from maestro_cli.symbolic.scores import import_partitura

    pt = import_partitura()

    score = alignment.score
    part = score.part if score.part is not None else _part_from_notes(score.notes, score.path)
    perf = alignment.performance
    array = np.zeros(len(perf), [("onset_sec", "f8"), ("duration_sec", "f8"), ("pitch", "i4"), ("velocity", "i4"),
                                 ("id", "U16")])
    array["onset_sec"], array["pitch"], array["velocity"] = perf["start_s"], perf["pitch"], perf["velocity"]
    array["duration_sec"] = np.maximum(perf["end_s"] - perf["start_s"], 1e-3)
    array["id"] = [f"n{k}" for k in range(len(perf))]
    performed = pt.performance.PerformedPart.from_note_array(array)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target = Path(folder) / "out.match"
        pt.save_match(alignment.labels(), pt.performance.Performance(performed), part, out=str(target),
                      score_filename=Path(score.path).name, performance_filename=Path(performance_path).name,
                      assume_unfolded=True)
        return target.read_text()


#: A MIDI score's onsets and durations are put on this grid (quarters) for the match file's score part: a performance
#: MIDI used as the score has arbitrary positions, whose common denominator overflows partitura's divisions.
MATCH_GRID = 1 / 192


def _part_from_notes(notes: np.ndarray, path: Path | str):
    """A partitura Part for a MIDI score (onsets and durations in quarters on :data:`MATCH_GRID`, the notes' ids)."""
    from maestro_cli.symbolic.scores import import_partitura

    note_array_to_score = import_partitura().musicanalysis.note_array_to_score

    array = np.zeros(len(notes), [("onset_beat", "f8"), ("duration_beat", "f8"), ("pitch", "i4"), ("id", "U64")])
    array["onset_beat"] = np.round(notes["onset_quarters"] / MATCH_GRID) * MATCH_GRID
    array["pitch"], array["id"] = notes["pitch"], notes["id"]
    array["duration_beat"] = np.maximum(np.round(notes["duration_quarters"] / MATCH_GRID) * MATCH_GRID, 1 / 16)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return note_array_to_score(array, assign_note_ids=False, estimate_time=True, return_part=True)
    except Exception as exc:  # noqa: BLE001 - partitura's score builder raises many types
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise MaestroError(f"cannot make a match file's score part from this MIDI score ({reason}); "
                           "use --format notes", path) from None


@dataclass
class Reference:
    """A note-level alignment read from a file: labelled (score id, performance note) items.

    Performance notes are ``(pitch, onset_s)``; ``score_ids`` are the score notes the file mentions.
    """

    items: list[tuple[str, str | None, tuple[int, float] | None]]  # (label, score id, performance note)

    @property
    def score_ids(self) -> set[str]:
        return {score_id for _, score_id, _ in self.items if score_id is not None}


def is_note_alignment(path: Path | str) -> bool:
    """Whether ``path`` is a match file or a notes CSV (rather than a time map or annotations)."""
    path = Path(path)
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        head = handle.read(400).decode("utf-8", errors="ignore").lstrip("\ufeff")
    return head.startswith("info(") or "snote(" in head or head.startswith(",".join(CSV_COLUMNS[:2]))


def read_reference(path: Path | str) -> Reference:
    """A match file (partitura's reader) or a notes CSV as a :class:`Reference`."""
    path = Path(path)
    if not path.is_file():
        raise MaestroError("no such file", path)
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.startswith(",".join(CSV_COLUMNS[:2])):
        return _read_csv(text, path)
    return _read_match(path)


def _read_csv(text: str, path: Path) -> Reference:
    items = []
    for number, row in enumerate(csv.DictReader(io.StringIO(text)), 2):
        try:
            status = row["status"]
            perf = (int(row["pitch"]), float(row["perf_onset_s"])) if status != "deletion" else None
        except (KeyError, ValueError, TypeError):
            raise MaestroError(f"line {number}: expected {','.join(CSV_COLUMNS)}", path) from None
        if status not in STATUSES:
            raise MaestroError(f"line {number}: status must be match, deletion or insertion, not '{status}'", path)
        items.append((status, (row["score_id"] or None) if status != "insertion" else None, perf))
    return Reference(items)


def _read_match(path: Path) -> Reference:
    from maestro_cli.symbolic.scores import import_partitura

    pt = import_partitura()

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            performance, alignment = pt.load_match(str(path))[:2]
    except Exception as exc:  # noqa: BLE001 - the match parser raises many types
        raise MaestroError(f"not a readable match file ({str(exc).splitlines()[0][:200] if str(exc) else exc!r})",
                           path) from None
    notes = performance.note_array()
    by_id = {str(i): (int(p), float(t)) for i, p, t in zip(notes["id"], notes["pitch"], notes["onset_sec"])}
    items = []
    for entry in alignment:
        label = entry.get("label")
        if label in STATUSES:
            items.append((label, str(entry["score_id"]) if label != "insertion" else None,
                          by_id.get(str(entry.get("performance_id"))) if label != "deletion" else None))
    return Reference(items)


def canonical_performance(estimate: Reference, reference: Reference, tolerance: float = 0.01) -> Reference:
    """``estimate`` with each performance note replaced by the reference's note of the same pitch within
    ``tolerance`` seconds (the same note read by another tool), so that items compare by equality."""
    known: dict[int, list[float]] = {}
    for _, _, perf in reference.items:
        if perf is not None:
            known.setdefault(perf[0], []).append(perf[1])
    sorted_known = {pitch: np.sort(times) for pitch, times in known.items()}

    def snap(perf):
        if perf is None or perf[0] not in sorted_known:
            return perf
        times = sorted_known[perf[0]]
        k = int(np.argmin(np.abs(times - perf[1])))
        return (perf[0], float(times[k])) if abs(times[k] - perf[1]) <= tolerance else perf

    return Reference([(label, score_id, snap(perf)) for label, score_id, perf in estimate.items])



def reference_points(path: Path | str, score: Path | str | None) -> tuple[np.ndarray, np.ndarray]:
    """(score time, performance time) of the matched notes of a note-level reference, one per score onset
    (the median performance onset), for evaluating a time map. A match file needs the ``score`` (its notes'
    ids and times at the score's tempo; as written or unfolded, whichever holds the file's ids)."""
    from maestro_cli.align.note_matching import longest_increasing

    path = Path(path)
    pairs: list[tuple[float, float]] = []
    if path.read_text(encoding="utf-8", errors="replace").startswith(",".join(CSV_COLUMNS[:2])):
        for row in csv.DictReader(path.open(encoding="utf-8")):
            if row.get("status") == "match":
                pairs.append((float(row["score_onset_s"]), float(row["perf_onset_s"])))
    else:
        if score is None:
            raise MaestroError("a match-file reference for a time map needs --score (to time its score notes)", path)
        from maestro_cli.symbolic.scores import score_variants

        reference = read_reference(path)
        wanted = reference.score_ids
        variant = max(score_variants(score), key=lambda v: len(wanted & set(v.notes["id"])))
        times = dict(zip(variant.notes["id"], variant.notes["start_s"]))
        pairs = [(float(times[s]), perf[1]) for label, s, perf in reference.items
                 if label == "match" and s in times and perf is not None]
    if len(pairs) < 2:
        raise MaestroError("reference holds fewer than two matched notes", path)
    s, p = np.asarray(pairs).T
    onsets, inverse = np.unique(np.round(s, 4), return_inverse=True)
    medians = np.array([np.median(p[inverse == k]) for k in range(len(onsets))])
    keep = longest_increasing(medians)
    return onsets[keep], medians[keep]
