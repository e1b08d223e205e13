"""Note-level transcription metrics (mir_eval) and frame F1, as reported by Onsets & Frames and its successors.

- ``note``: onset within 50 ms and same pitch;
- ``note_offset``: also offset within 20 % of the reference note's length or 50 ms, whichever is larger;
- ``note_offset_velocity``: also velocity within 0.1 after mir_eval's linear rescaling of the estimate;
- ``frame``: precision/recall of active (time, pitch) cells on a 10 ms grid.

References read from MIDI get the sustain pedal applied first (Magenta's rule, see :mod:`maestro_cli.symbolic.pedal`).

When both files are MIDI and both carry sustain-pedal (CC64) events, the pedal-down intervals are scored too, as
Kong et al. 2021 ("High-resolution piano transcription with pedals", ``calculate_score_for_paper.py``) do with
mir_eval: ``pedal``: onset within 200 ms and offset within 20 % or 50 ms; ``pedal_onset``: onset within 200 ms.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maestro_cli.errors import MaestroError
from maestro_cli.symbolic.midi import read_midi, read_notes
from maestro_cli.symbolic.notes import MIDI_SUFFIXES, TABLE_SUFFIXES

ONSET_TOLERANCE = 0.05
OFFSET_RATIO = 0.2
OFFSET_MIN_TOLERANCE = 0.05
FRAME_HOP = 0.01
MIN_DURATION = 1e-3
METRIC_GROUPS = ("note", "note_offset", "note_offset_velocity", "frame")
PEDAL_ONSET_TOLERANCE = 0.2
PEDAL_THRESHOLD = 64
#: Preferred note file when several share a stem in batch mode.
SUFFIX_ORDER = MIDI_SUFFIXES + TABLE_SUFFIXES


def to_mir_eval(notes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intervals (clipped at 0, at least 1 ms long), pitches in Hz, velocities, as mir_eval wants them."""
    onsets = np.maximum(notes["start_s"], 0.0)
    offsets = np.maximum(notes["end_s"], onsets + MIN_DURATION)
    hz = 440.0 * 2.0 ** ((notes["pitch"].astype(np.float64) - 69.0) / 12.0)
    return np.stack([onsets, offsets], axis=1), hz, notes["velocity"].astype(np.float64)


def frame_roll(notes: np.ndarray, n_frames: int, hop: float = FRAME_HOP) -> np.ndarray:
    """Boolean piano roll ``(n_frames, 128)``: cell (k, p) is on when a note of pitch p sounds at time k * hop."""
    roll = np.zeros((n_frames, 128), dtype=bool)
    for note in notes:
        start, stop = int(np.ceil(note["start_s"] / hop - 1e-9)), int(np.ceil(note["end_s"] / hop - 1e-9))
        roll[max(start, 0):min(stop, n_frames), int(note["pitch"])] = True
    return roll


def _prf(tp: float, n_est: float, n_ref: float) -> tuple[float, float, float]:
    precision = tp / n_est if n_est else 0.0
    recall = tp / n_ref if n_ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def frame_scores(ref_notes: np.ndarray, est_notes: np.ndarray, hop: float = FRAME_HOP) -> tuple[float, float, float]:
    """Frame precision, recall and F1 on a ``hop``-second grid covering both sets of notes."""
    end = max([float(np.max(n["end_s"])) for n in (ref_notes, est_notes) if len(n)], default=0.0)
    n_frames = int(np.ceil(end / hop)) + 1
    ref, est = frame_roll(ref_notes, n_frames, hop), frame_roll(est_notes, n_frames, hop)
    return _prf(float(np.sum(ref & est)), float(est.sum()), float(ref.sum()))


def evaluate_notes(ref_notes: np.ndarray, est_notes: np.ndarray) -> dict[str, float]:
    """All metrics for reference and estimated notes (:data:`~maestro_cli.symbolic.notes.NOTE_DTYPE`):
    ``<group>_precision|recall|f1`` and note counts."""
    from mir_eval import transcription, transcription_velocity

    ref_iv, ref_hz, ref_vel = to_mir_eval(ref_notes)
    est_iv, est_hz, est_vel = to_mir_eval(est_notes)
    scores: dict[str, float] = {"n_ref": len(ref_notes), "n_est": len(est_notes)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mir_eval warns when a side has no notes; it scores 0
        groups = {
            "note": transcription.precision_recall_f1_overlap(
                ref_iv, ref_hz, est_iv, est_hz, onset_tolerance=ONSET_TOLERANCE, offset_ratio=None)[:3],
            "note_offset": transcription.precision_recall_f1_overlap(
                ref_iv, ref_hz, est_iv, est_hz, onset_tolerance=ONSET_TOLERANCE, offset_ratio=OFFSET_RATIO,
                offset_min_tolerance=OFFSET_MIN_TOLERANCE)[:3],
            "note_offset_velocity": transcription_velocity.precision_recall_f1_overlap(
                ref_iv, ref_hz, ref_vel, est_iv, est_hz, est_vel, onset_tolerance=ONSET_TOLERANCE,
                offset_ratio=OFFSET_RATIO, offset_min_tolerance=OFFSET_MIN_TOLERANCE)[:3],
            "frame": frame_scores(ref_notes, est_notes),
        }
    for group, (precision, recall, f1) in groups.items():
        scores[f"{group}_precision"] = float(precision)
        scores[f"{group}_recall"] = float(recall)
        scores[f"{group}_f1"] = float(f1)
    return scores


def pedal_intervals(times: np.ndarray, values: np.ndarray, end: float | None = None) -> np.ndarray:
    """``(n, 2)`` spans where a pedal is down (value >= 64), from control-change times and values.

    A pedal still down at the last event lasts until ``end`` (default: that event); zero-length spans are dropped.
    """
    times = np.asarray(times, dtype=np.float64)
    down = np.asarray(values) >= PEDAL_THRESHOLD
    order = np.argsort(times, kind="stable")
    times, down = times[order], down[order]
    change = np.flatnonzero(down != np.concatenate([[False], down[:-1]]))
    starts, stops = times[change[down[change]]], times[change[~down[change]]]
    if len(stops) < len(starts):
        stops = np.append(stops, max(times[-1] if end is None else end, starts[-1]))
    spans = np.stack([starts, stops], axis=1) if len(starts) else np.zeros((0, 2))
    return spans[spans[:, 1] > spans[:, 0]]


def evaluate_pedal(ref: np.ndarray, est: np.ndarray) -> dict[str, float]:
    """Sustain-pedal P/R/F1 of pedal-down spans ``(n, 2)``, Kong et al.'s mir_eval convention.

    ``pedal_``: onset within 200 ms and offset within 20 % of the reference span or 50 ms; ``pedal_onset_``:
    onset within 200 ms. Also ``n_ref_pedal`` and ``n_est_pedal``.
    """
    from mir_eval import transcription

    ref, est = (np.asarray(spans, dtype=np.float64).reshape(-1, 2) for spans in (ref, est))
    scores: dict[str, float] = {"n_ref_pedal": len(ref), "n_est_pedal": len(est)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for group, ratio in (("pedal", OFFSET_RATIO), ("pedal_onset", None)):
            precision, recall, f1, _ = transcription.precision_recall_f1_overlap(
                ref, np.ones(len(ref)), est, np.ones(len(est)), onset_tolerance=PEDAL_ONSET_TOLERANCE,
                offset_ratio=ratio, offset_min_tolerance=OFFSET_MIN_TOLERANCE)
            scores.update({f"{group}_precision": float(precision), f"{group}_recall": float(recall),
                           f"{group}_f1": float(f1)})
    return scores


def read_sustain(path: Path) -> np.ndarray | None:
    """Sustain-pedal spans of a MIDI file, or None for a note table or a MIDI file without CC64 events."""
    if Path(path).suffix.lower() not in MIDI_SUFFIXES:
        return None
    midi = read_midi(path)
    notes, (times, values) = midi.notes, midi.pedal()
    if not len(times):
        return None
    return pedal_intervals(times, values, float(notes["end_s"].max(initial=0.0)))


def evaluate_files(ref: Path, est: Path) -> dict[str, float]:
    """Metrics for a reference file (MIDI with pedal applied, or CSV/TSV) against an estimate file, plus
    sustain-pedal scores when both are MIDI files with CC64 events."""
    scores = evaluate_notes(read_notes(ref), read_notes(est))
    ref_pedal, est_pedal = read_sustain(ref), read_sustain(est)
    if ref_pedal is not None and est_pedal is not None:
        scores.update(evaluate_pedal(ref_pedal, est_pedal))
    return scores


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    """The mean of every numeric metric over the rows that have it (counts, ``n_*``, are summed)."""
    keys = list(dict.fromkeys(key for row in rows for key in row if isinstance(row[key], (int, float))))
    return {key: (float(sum(row[key] for row in rows if key in row)) if key.startswith("n_")
                  else float(np.mean([row[key] for row in rows if key in row]))) for key in keys}


@dataclass(frozen=True)
class Pair:
    """A reference file and the estimate with the same stem."""

    stem: str
    ref: Path
    est: Path


def _by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir(), key=lambda p: SUFFIX_ORDER.index(p.suffix.lower())
                       if p.suffix.lower() in SUFFIX_ORDER else len(SUFFIX_ORDER)):
        if path.is_file() and path.suffix.lower() in SUFFIX_ORDER:
            files.setdefault(path.stem, path)
    return files


def pair_folders(ref_dir: Path, est_dir: Path) -> tuple[list[Pair], list[str]]:
    """Pairs of note files with equal stems in two folders, and the reference stems with no estimate."""
    refs, ests = _by_stem(ref_dir), _by_stem(est_dir)
    pairs = [Pair(stem, refs[stem], ests[stem]) for stem in sorted(refs) if stem in ests]
    if not pairs:
        raise MaestroError(f"no file stems in common with {ref_dir} (files: .mid, .midi, .csv, .tsv)", est_dir)
    return pairs, sorted(set(refs) - set(ests))
