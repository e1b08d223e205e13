"""Objective statistics of generated piano music against a reference set (after Yang & Lerch 2018).

Every feature is a distribution of samples pooled over all pieces of a set, binned into a **histogram with fixed
bins** (the same bins for every set, listed in :data:`FEATURES`), so two sets are compared bin by bin:

* **overlap area** ``sum(min(p, q))`` of the two normalised histograms: 1 for identical distributions, 0 for
  disjoint ones;
* **KL divergence** ``KL(reference || generated)`` in nats, after adding :data:`EPSILON` to every bin of both
  histograms (so a bin the generated set never fills costs a large but finite amount, about 14 nats at most).

Features (sustain pedal applied to durations first, Magenta's rule):
pitch class of every note; pitch range (semitones) and note density (onsets per second) in consecutive
:data:`WINDOW_S`-second windows, so that even one short piece gives a distribution; inter-onset intervals between
consecutive onsets; note durations; velocities; polyphony (notes sounding) sampled every :data:`POLYPHONY_STEP_S`
seconds from the first onset to the last offset. Values beyond the last bin are counted in the last bin.
A piece is a :data:`maestro_cli.symbolic.notes.NOTE_DTYPE` array; the samplers expect it sorted by onset then
pitch (:func:`samples` sorts; :meth:`maestro_cli.symbolic.midi.Midi.sounding` reads them so).

Yang & Lerch compare intra-set and inter-set distances of per-piece features with kernel density estimates; here the
per-feature distributions are compared directly, which needs no pairwise distances and is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from maestro_cli.symbolic.notes import sort_notes

WINDOW_S = 4.0
POLYPHONY_STEP_S = 0.05
EPSILON = 1e-6


@dataclass(frozen=True)
class Feature:
    """One statistic: how to sample it from a piece, and the fixed bin edges of its histogram."""

    name: str
    label: str
    unit: str
    edges: np.ndarray
    sample: Callable[[np.ndarray], np.ndarray]
    log_x: bool = False


def _windows(notes: np.ndarray) -> list[np.ndarray]:
    """Indices of the notes starting in each consecutive ``WINDOW_S`` window (from the first onset)."""
    if not len(notes):
        return []
    onset = notes["start_s"]
    index = ((onset - onset[0]) // WINDOW_S).astype(np.int64)
    bounds = np.searchsorted(index, np.arange(index[-1] + 2))
    return [np.arange(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def pitch_classes(notes: np.ndarray) -> np.ndarray:
    """Pitch class (0 = C) of every note."""
    return notes["pitch"].astype(np.int64) % 12


def pitch_ranges(notes: np.ndarray) -> np.ndarray:
    """Highest minus lowest pitch of the notes starting in each window (empty windows skipped)."""
    pitch = notes["pitch"].astype(np.int64)
    return np.array([np.ptp(pitch[i]) for i in _windows(notes) if len(i)], dtype=np.float64)


def note_densities(notes: np.ndarray) -> np.ndarray:
    """Onsets per second in each window, silent windows included (the last, partial one excluded unless alone)."""
    windows = _windows(notes)
    counts = np.array([len(i) for i in windows], dtype=np.float64)
    return (counts[:-1] if len(counts) > 1 else counts) / WINDOW_S


def inter_onset_intervals(notes: np.ndarray) -> np.ndarray:
    """Seconds between consecutive onsets (0 for notes of a chord struck together)."""
    return np.diff(notes["start_s"])


def durations(notes: np.ndarray) -> np.ndarray:
    """Note durations in seconds (after sustain)."""
    return notes["end_s"] - notes["start_s"]


def velocities(notes: np.ndarray) -> np.ndarray:
    """MIDI velocity of every note."""
    return notes["velocity"].astype(np.float64)


def polyphony(notes: np.ndarray) -> np.ndarray:
    """Number of notes sounding at every ``POLYPHONY_STEP_S`` step from the first onset to the last offset."""
    if not len(notes):
        return np.zeros(0)
    grid = np.arange(notes["start_s"][0], notes["end_s"].max(), POLYPHONY_STEP_S)
    started = np.searchsorted(np.sort(notes["start_s"]), grid, side="right")
    ended = np.searchsorted(np.sort(notes["end_s"]), grid, side="right")
    return (started - ended).astype(np.float64)


def _log_edges(low: float, high: float, n: int) -> np.ndarray:
    return np.concatenate([[0.0], np.geomspace(low, high, n)])


FEATURES: dict[str, Feature] = {feature.name: feature for feature in (
    Feature("pitch_class", "pitch class", "", np.arange(13) - 0.5, pitch_classes),
    Feature("pitch_range", f"pitch range ({WINDOW_S:g} s)", "semitones", np.arange(0, 92, 4) - 0.5, pitch_ranges),
    Feature("note_density", f"note density ({WINDOW_S:g} s)", "notes/s", np.arange(0, 41, 1.0), note_densities),
    Feature("ioi", "IOI", "s", _log_edges(0.01, 4.0, 32), inter_onset_intervals, log_x=True),
    Feature("duration", "duration", "s", _log_edges(0.02, 16.0, 32), durations, log_x=True),
    Feature("velocity", "velocity", "", np.linspace(0.5, 128.5, 33), velocities),
    Feature("polyphony", "polyphony", "notes", np.arange(0, 34) - 0.5, polyphony),
)}


def samples(pieces: Iterable[np.ndarray]) -> dict[str, np.ndarray]:
    """Every feature's samples pooled over ``pieces`` (each sorted by onset then pitch first)."""
    pieces = [sort_notes(piece) for piece in pieces]
    return {name: np.concatenate([feature.sample(piece) for piece in pieces] + [np.zeros(0)])
            for name, feature in FEATURES.items()}


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Normalised histogram (sums to 1, all zeros for no values); values past the last edge go to the last bin."""
    clipped = np.clip(values, edges[0], np.nextafter(edges[-1], edges[0]))
    counts, _ = np.histogram(clipped, bins=edges)
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def overlap_area(p: np.ndarray, q: np.ndarray) -> float:
    """Shared area of two normalised histograms: 1 when identical, 0 when disjoint."""
    return float(np.minimum(p, q).sum())


def kl_divergence(p: np.ndarray, q: np.ndarray, epsilon: float = EPSILON) -> float:
    """``KL(p || q)`` in nats, both histograms smoothed by ``epsilon`` per bin and renormalised."""
    p = (p + epsilon) / (p + epsilon).sum()
    q = (q + epsilon) / (q + epsilon).sum()
    return float(np.sum(p * np.log(p / q)))


def _stats(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return {"mean": None, "std": None}
    return {"mean": float(values.mean()), "std": float(values.std())}


def compare(generated: Iterable[np.ndarray], reference: Iterable[np.ndarray]) -> dict:
    """Per-feature overlap area, KL divergence and histograms of ``generated`` against ``reference``, and a summary.

    Returns ``{"features": {name: {...}}, "summary": {"overlap_mean", "kl_mean"}}``; each feature holds
    ``overlap``, ``kl``, ``generated``/``reference`` ``{"mean", "std", "n"}``, the bin ``edges`` and both histograms.
    """
    gen, ref = samples(generated), samples(reference)
    features: dict[str, dict] = {}
    for name, feature in FEATURES.items():
        p, q = histogram(ref[name], feature.edges), histogram(gen[name], feature.edges)
        empty = not len(gen[name]) or not len(ref[name])
        features[name] = {
            "overlap": None if empty else overlap_area(p, q),
            "kl": None if empty else kl_divergence(p, q),
            "generated": {**_stats(gen[name]), "n": int(len(gen[name]))},
            "reference": {**_stats(ref[name]), "n": int(len(ref[name]))},
            "edges": feature.edges.tolist(),
            "generated_hist": q.tolist(),
            "reference_hist": p.tolist(),
        }
    scored = [f for f in features.values() if f["overlap"] is not None]
    summary = {
        "overlap_mean": float(np.mean([f["overlap"] for f in scored])) if scored else None,
        "kl_mean": float(np.mean([f["kl"] for f in scored])) if scored else None,
    }
    return {"features": features, "summary": summary}
