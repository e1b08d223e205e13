"""Score-informed transcription: a blind transcription corrected by the score aligned to it, and the deviations.

The inputs are the transcriber's notes (:data:`maestro_cli.symbolic.notes.NOTE_DTYPE`, as played) paired with the
score notes by any aligner (a :class:`maestro_cli.align.notes.NoteAlignment`, or a time map matched here), so the
transcriber and the aligner never meet. The result:

- every score note the transcription confirms (same pitch near its aligned time) is written with the transcribed
  onset, offset and velocity;
- for a transcriber with candidates (:class:`maestro_cli.protocols.CandidateTranscriber`), a score note the
  transcription left out is looked for among them near its aligned time: any evidence there confirms it;
- score notes the audio does not support are left out (``missed``);
- transcribed notes the score lacks are kept when clearly present: ``extra``. Dropped as likely transcription
  errors: notes the model is less than ``extra_confidence`` sure of (with candidates; without them, notes shorter
  than ``extra_min_s``), re-onsets of a confirmed note of the same pitch still sounding, and octaves, twelfths and
  double octaves above a score note starting with them and not louder than it (partials heard as notes: a partial
  carries part of its note's energy, a real doubling adds its own; measured, see docs/transcribe.md);
- a missed score note and a kept extra note at most :data:`WRONG_PITCH_INTERVAL` semitones apart, starting within
  ``wrong_pitch_window`` s of each other (the score note's aligned time), are one ``wrong_pitch`` deviation.

Deviations carry the score position (note id, measure, beats from the score's start) and the time in the recording.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maestro_cli.errors import MaestroError

#: Below this note-matching F-measure (matched notes against score and transcription) the score is taken to be of
#: another piece. Measured on the 4 MAPS excerpts (benchmarks/informed_transcription.py): the right score
#: (onset_threshold 0.1-0.4) 0.63-0.81 with onsets-frames, another piece's 0.07-0.14; transkun 0.90-0.995 and
#: 0.06-0.18.
MIN_CONFIDENCE = 0.35
#: An unmatched transcribed note is kept (an ``extra`` deviation) from this length up, in seconds.
EXTRA_MIN_S = 0.06
WRONG_PITCH_WINDOW = 0.1
#: Candidates (:class:`maestro_cli.protocols.CandidateTranscriber`) are searched this far (s) from a left-out score
#: note's aligned onset; one at least ``RECOVER`` confident confirms it. The score makes the note likely, so any
#: evidence the backend hands down will do: ``RECOVER`` is the lowest candidate floor of the shipped backends, and each
#: backend's floor (its option ``candidate_floor``) is where its evidence stops telling played notes from wrong
#: score notes (measured: docs/transcribe.md).
SEARCH_S = 0.1
RECOVER = 0.005
#: With candidates, an unmatched transcribed note is kept (``extra``) only when the model is this sure of it (where
#: the score has no note, the prior is lower than the one the model's own decision threshold assumes).
EXTRA_CONFIDENCE = 0.9
#: Intervals (semitones) at which a note's partials are loud enough to be transcribed as notes of their own. A
#: transcribed note at one of them above a sounding note is taken for its partial unless it is the louder of the two.
OVERTONES = (12, 19, 24)
#: Two notes of one pitch starting this close (s) are one event.
SAME_ONSET_S = 0.05
WRONG_PITCH_INTERVAL = 2  # a neighbouring key; farther apart they are a missed and an extra note
KINDS = ("missed", "extra", "wrong_pitch")
REPORT_COLUMNS = ("kind", "pitch", "played_pitch", "score_id", "measure", "score_beat", "time_s", "velocity")


@dataclass
class Informed:
    """The performance notes (:data:`~maestro_cli.symbolic.notes.NOTE_DTYPE`) and the deviations from the score."""

    notes: np.ndarray
    deviations: list[dict]
    confidence: float
    counts: dict = field(default_factory=dict)


def note_alignment(alignment, played: np.ndarray):
    """The alignment's note pairs, or, for a time-map aligner, ``played`` matched to the score through its map."""
    from maestro_cli.align.notes import match_performance

    if alignment.notes is not None:
        return alignment.notes
    score = alignment.score
    if score is None:
        raise MaestroError("the aligner returned neither the score it aligned nor note pairs", None)
    return match_performance(score, played, np.asarray(alignment.score_times, float),
                             np.asarray(alignment.performance_times, float))[2]


def informed(notes, map_score: np.ndarray, map_performance: np.ndarray, candidates: tuple | None = None,
             extra_min_s: float = EXTRA_MIN_S, wrong_pitch_window: float = WRONG_PITCH_WINDOW,
             search_s: float = SEARCH_S, recover: float = RECOVER, extra_confidence: float = EXTRA_CONFIDENCE,
             harmonics: bool = True) -> Informed:
    """Combine a note-level alignment of a transcription (``notes``) into the performance and its deviations.

    ``map_score``/``map_performance`` (the alignment's time map, strictly increasing) place missed score notes in
    the recording and extra notes in the score. ``candidates`` (``(notes, confidence)`` of a
    :class:`maestro_cli.protocols.CandidateTranscriber`) are searched for the score notes the transcription left out
    (:func:`recovered`), and give the confidence an unmatched transcribed note needs to be kept as ``extra``.
    ``harmonics`` False keeps the overtones of score notes too.
    """
    from maestro_cli.align.note_matching import extrapolated
    from maestro_cli.symbolic.notes import sort_notes

    score, played = notes.score.notes, notes.performance
    map_score, map_performance = np.asarray(map_score, float), np.asarray(map_performance, float)
    missed = np.setdiff1d(np.arange(len(score)), notes.score_index)
    missed_time = extrapolated(score["start_s"][missed], map_score, map_performance)
    unmatched = np.setdiff1d(np.arange(len(played)), notes.performance_index)
    confirmed = played[notes.performance_index]
    found, dropped = np.zeros(0, dtype=played.dtype), 0
    if candidates is not None:
        pick = recovered(score["pitch"][missed], missed_time, played, *candidates, search_s, recover)
        found = candidates[0][pick[pick >= 0]]
        missed, missed_time = missed[pick < 0], missed_time[pick < 0]
        unmatched = unmatched[[not _same_event(played[k], found) for k in unmatched]]
        sure = _confidence_of(played[unmatched], *candidates) >= extra_confidence
        unmatched, dropped = unmatched[sure], int(np.sum(~sure))
    sounding = np.concatenate([confirmed, found])
    min_s = extra_min_s if candidates is None else 0.0  # the model's confidence, not a length, tells them apart
    extra = unmatched[[_clearly_present(played[k], sounding, min_s)
                       and not (harmonics and _overtone(played[k], sounding)) for k in unmatched]]
    out = sort_notes(np.concatenate([confirmed, found, played[extra]]))
    pairs = wrong_pitch_pairs(missed_time, score["pitch"][missed], played["start_s"][extra],
                               played["pitch"][extra], wrong_pitch_window)
    position = _score_position(score)
    deviations = []
    paired_missed, paired_extra = {m for m, _ in pairs}, {e for _, e in pairs}
    for m, e in pairs:
        s, p = missed[m], extra[e]
        deviations.append(_row("wrong_pitch", score[s], played[p], *position(score["start_s"][s])))
    for m in set(range(len(missed))) - paired_missed:
        s = missed[m]
        deviations.append(_row("missed", score[s], None, *position(score["start_s"][s]), time_s=missed_time[m]))
    performance_to_score = np.interp(played["start_s"][extra], map_performance, map_score)
    for e in set(range(len(extra))) - paired_extra:
        deviations.append(_row("extra", None, played[extra[e]], *position(performance_to_score[e])))
    deviations.sort(key=lambda row: (row["time_s"], row["pitch"]))
    counts = {"score_notes": int(len(score)), "transcribed_notes": int(len(played)),
              "confirmed": int(len(notes.score_index)), "recovered": int(len(found)), "kept_extra": int(len(extra)),
              "dropped_unmatched": int(len(unmatched) - len(extra) + dropped),
              **{kind: sum(row["kind"] == kind for row in deviations) for kind in KINDS}}
    return Informed(out, deviations, round(notes.f_measure(), 4), counts)


def recovered(pitch: np.ndarray, time_s: np.ndarray, played: np.ndarray, candidates: np.ndarray,
              confidence: np.ndarray, search_s: float = SEARCH_S, recover: float = RECOVER) -> np.ndarray:
    """For each left-out score note (``pitch``, aligned onset ``time_s``), the index of the candidate that confirms
    it, or -1: a candidate of its pitch starting within ``search_s`` of ``time_s``, at least ``recover`` confident,
    not a note the transcription already has; the closest in time first, each candidate used once."""
    fresh = np.array([not _same_event(note, played) for note in candidates], bool)
    options = sorted((abs(candidates["start_s"][c] - t), m, c) for m, (p, t) in enumerate(zip(pitch, time_s))
                     for c in np.flatnonzero(fresh & (candidates["pitch"] == p) & (confidence >= recover)
                                             & (np.abs(candidates["start_s"] - t) <= search_s)))
    pick = np.full(len(pitch), -1)
    for _, m, c in options:
        if pick[m] < 0 and c not in pick:
            pick[m] = c
    return pick


def _same_event(note, notes: np.ndarray, tolerance: float = SAME_ONSET_S) -> bool:
    """``notes`` has one of ``note``'s pitch starting within ``tolerance`` seconds of it."""
    return bool(np.any((notes["pitch"] == note["pitch"]) & (np.abs(notes["start_s"] - note["start_s"]) <= tolerance)))


def _confidence_of(notes: np.ndarray, candidates: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """The highest confidence of a candidate of each note's pitch starting within :data:`SAME_ONSET_S` of it (0
    without one)."""
    return np.array([np.max(confidence[same], initial=0.0) for same in
                     ((candidates["pitch"] == note["pitch"])
                      & (np.abs(candidates["start_s"] - note["start_s"]) <= SAME_ONSET_S) for note in notes)])


def _overtone(note, sounding: np.ndarray) -> bool:
    """``note`` is an octave, twelfth or double octave above a note that starts with it (within
    :data:`SAME_ONSET_S`) and is not louder than that note: a partial of it, likely heard as a note of its own. (A
    partial carries part of its note's energy; a key struck at that pitch adds its own, so the transcriber hears
    it louder than the note below.)"""
    return bool(np.any(np.isin(int(note["pitch"]) - sounding["pitch"].astype(int), OVERTONES)
                       & (np.abs(sounding["start_s"] - note["start_s"]) <= SAME_ONSET_S)
                       & (sounding["velocity"] >= note["velocity"])))


def _clearly_present(note, confirmed: np.ndarray, min_s: float) -> bool:
    """Long enough, and not a re-onset of a confirmed note of the same pitch that is still sounding."""
    reonset = np.any((confirmed["pitch"] == note["pitch"]) & (confirmed["start_s"] < note["start_s"])
                     & (confirmed["end_s"] > note["start_s"] - 0.05))
    return bool(note["end_s"] - note["start_s"] >= min_s and not reonset)


def wrong_pitch_pairs(missed_time, missed_pitch, extra_time, extra_pitch, window: float) -> list[tuple[int, int]]:
    """Closest-first pairs (missed index, extra index) of neighbouring pitches within ``window`` seconds."""
    candidates = sorted((abs(t - u), m, e) for m, t in enumerate(missed_time) for e, u in enumerate(extra_time)
                        if abs(t - u) <= window
                        and 0 < abs(int(missed_pitch[m]) - int(extra_pitch[e])) <= WRONG_PITCH_INTERVAL)
    used_m, used_e, pairs = set(), set(), []
    for _, m, e in candidates:
        if m not in used_m and e not in used_e:
            used_m.add(m)
            used_e.add(e)
            pairs.append((m, e))
    return pairs


def _score_position(score: np.ndarray):
    """A function from score seconds to (measure, beats from the start), interpolated between score onsets."""
    onsets, first = np.unique(score["start_s"], return_index=True)
    beats, measures = score["onset_beats"][first], score["measure"][first]

    def position(seconds: float) -> tuple[int, float]:
        k = int(np.clip(np.searchsorted(onsets, seconds + 1e-6, side="right") - 1, 0, len(onsets) - 1))
        return int(measures[k]), float(np.interp(seconds, onsets, beats))

    return position


def _row(kind: str, score_note, played_note, measure: int, beat: float, time_s: float | None = None) -> dict:
    pitch = score_note if score_note is not None else played_note
    return {"kind": kind, "pitch": int(pitch["pitch"]),
            "played_pitch": int(played_note["pitch"]) if played_note is not None else None,
            "score_id": str(score_note["id"]) if score_note is not None else None,
            "measure": measure, "score_beat": round(beat, 3),
            "time_s": round(float(time_s if played_note is None else played_note["start_s"]), 4),
            "velocity": int(played_note["velocity"]) if played_note is not None else None}


def format_report(result: Informed, path: Path) -> str:
    """The deviations as CSV (:data:`REPORT_COLUMNS`) or, for a ``.json`` path, JSON with the counts."""
    if Path(path).suffix.lower() == ".json":
        return json.dumps({"confidence": result.confidence, "counts": result.counts,
                           "deviations": result.deviations}, indent=1) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: "" if value is None else value for key, value in row.items()} for row in result.deviations)
    return out.getvalue()


def read_report(path: Path | str) -> list[dict]:
    """Deviations from a CSV or JSON report (``time_s``, ``pitch`` and ``kind`` of each)."""
    path = Path(path)
    if not path.is_file():
        raise MaestroError("no such file", path)
    text = path.read_text(encoding="utf-8")
    try:
        rows = json.loads(text)["deviations"] if path.suffix.lower() == ".json" else list(csv.DictReader(
            io.StringIO(text)))
        return [{"kind": row["kind"], "pitch": int(row["pitch"]), "time_s": float(row["time_s"]),
                 "played_pitch": int(row["played_pitch"]) if row.get("played_pitch") not in (None, "") else None}
                for row in rows]
    except (KeyError, ValueError, TypeError, json.JSONDecodeError):
        raise MaestroError(f"not a deviation report (expected {','.join(REPORT_COLUMNS)})", path) from None
