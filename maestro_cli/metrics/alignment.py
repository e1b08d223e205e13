"""Alignment error at reference points: how far the estimated map puts known score positions.

A reference is a list of (score time, performance time) pairs: an alignment CSV/JSON of ours, or an ASAP-style
pair of annotation files (score annotations, performance annotations: one beat per line, time in the first
tab-separated column, the n-th line of one matching the n-th of the other). The estimate maps every reference
score time to a performance time (linear between its points, the local tempo beyond them); the errors are the
absolute differences to the reference performance times.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maestro_cli.errors import MaestroError

THRESHOLDS_MS = (25, 50, 100, 200)


def read_annotation_times(path: Path | str) -> np.ndarray:
    """First column of an ASAP annotation file (``time<TAB>time<TAB>label``), seconds."""
    path = Path(path)
    if not path.is_file():
        raise MaestroError("no such file", path)
    times = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            times.append(float(line.replace(",", "\t").split()[0]))
        except ValueError:
            raise MaestroError(f"line {number}: expected a time in seconds in the first column", path) from None
    if not times:
        raise MaestroError("annotation file holds no times", path)
    return np.asarray(times)


def load_reference(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Reference ``(score_times, performance_times)`` from one alignment file or two annotation files."""
    from maestro_cli.align.io import read_alignment

    if len(paths) == 1:
        score, performance, _ = read_alignment(paths[0])
        return score, performance
    if len(paths) != 2:
        raise MaestroError("--ref takes one alignment file, or two annotation files (score, then performance)")
    score, performance = read_annotation_times(paths[0]), read_annotation_times(paths[1])
    if len(score) != len(performance):
        raise MaestroError(f"{len(score)} score annotations but {len(performance)} performance annotations; "
                           "the files must list the same beats", paths[1])
    return score, performance


def map_times(times: np.ndarray, score: np.ndarray, performance: np.ndarray) -> np.ndarray:
    """Performance times of score ``times`` through the map: linear inside, local tempo outside."""
    mapped = np.interp(times, score, performance)
    if len(score) >= 2:
        before, after = times < score[0], times > score[-1]
        head = (performance[1] - performance[0]) / (score[1] - score[0])
        tail = (performance[-1] - performance[-2]) / (score[-1] - score[-2])
        mapped[before] = performance[0] + head * (times[before] - score[0])
        mapped[after] = performance[-1] + tail * (times[after] - score[-1])
    return mapped


def alignment_errors(ref_score: np.ndarray, ref_performance: np.ndarray, est_score: np.ndarray,
                     est_performance: np.ndarray) -> np.ndarray:
    """Absolute error in seconds at every reference point."""
    return np.abs(map_times(np.asarray(ref_score, float), np.asarray(est_score, float),
                            np.asarray(est_performance, float)) - np.asarray(ref_performance, float))


def summarize(errors: np.ndarray) -> dict[str, float]:
    """mean, median, p90 (ms) and the percentage of points within 25/50/100/200 ms."""
    errors = np.asarray(errors, float)
    if len(errors) == 0:
        raise MaestroError("no reference points to evaluate")
    out = {"points": int(len(errors)), "mean_ms": float(errors.mean() * 1000),
           "median_ms": float(np.median(errors) * 1000), "p90_ms": float(np.percentile(errors, 90) * 1000)}
    for threshold in THRESHOLDS_MS:
        # a hair of tolerance so that 50.000 ms computed as 0.05000000001 s counts as within 50 ms
        out[f"within_{threshold}ms"] = float(100.0 * np.mean(errors <= threshold / 1000 + 1e-9))
    return out


def note_alignment_scores(estimate, reference, tolerance: float = 0.01) -> dict[str, float]:
    """Precision, recall and F-measure of matched (score note, performance note) pairs, of deletions and of
    insertions, as in the note-alignment literature (parangonar's ``fscore_alignments``).

    ``estimate`` and ``reference`` are :class:`maestro_cli.align.notes.Reference`; the estimate's performance
    notes are first identified with the reference's (same pitch, onsets within ``tolerance`` s: 10 ms for the
    same MIDI read by two tools, more for transcribed notes against the played MIDI). Score notes the
    reference does not mention at all (e.g. unison duplicates it leaves out) are not scored.
    """
    from maestro_cli.align.notes import STATUSES, Reference, canonical_performance

    known = reference.score_ids
    scored = [item for item in estimate.items if item[1] is None or item[1] in known]
    out: dict[str, float] = {"score_notes": len(known), "unscored": len(estimate.items) - len(scored)}
    estimate = canonical_performance(Reference(scored), reference, tolerance)
    for label in STATUSES:
        predicted = {item for item in estimate.items if item[0] == label}
        truth = {item for item in reference.items if item[0] == label}
        correct = len(predicted & truth)
        precision = correct / len(predicted) if predicted else float(not truth)
        recall = correct / len(truth) if truth else float(not predicted)
        f_measure = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        out.update({f"{label}_precision": precision, f"{label}_recall": recall, f"{label}_f": f_measure,
                    f"{label}_est": len(predicted), f"{label}_ref": len(truth)})
    return out
