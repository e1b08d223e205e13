"""A composer classifier for 30 s excerpts, trained on real MAESTRO train pieces: can you hear the composer?

Five classes (Bach, Chopin, Liszt, Mozart, Beethoven). Every piece goes through the tokens first (sustain pedal
folded into durations, 10 ms grid, 32 velocity bins), so real and generated excerpts look alike to the features.
Features of an excerpt (all transposition-invariant, since the generator is trained with transpositions):
pitch-class histogram rotated to its strongest class, pitch statistics, melodic intervals between consecutive
onsets, log-duration, log-IOI, velocity and polyphony histograms, note density. Model: standardised
logistic regression, balanced class weights. Train: up to 8 non-overlapping 30 s excerpts per train piece;
real test accuracy: up to 4 excerpts per test piece.

Run: ``.venv/bin/python benchmarks/composer_classifier.py [--dataset ROOT]``: prints a table (stderr) and one
JSON line (stdout) with the real test accuracy. ``benchmarks/generate_quality.py`` uses it on generated pieces.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from common import MAESTRO_MIDI, argument_parser, console, emit, shared_data, table

from maestro_cli.data.composers import resolve_composer
from maestro_cli.data.maestro import read_metadata
from maestro_cli.tokens import performance as events

COMPOSERS = ("Bach", "Chopin", "Liszt", "Mozart", "Beethoven")
EXCERPT_S = 30.0
DEFAULT_ROOT = shared_data() / MAESTRO_MIDI


def excerpts(notes: np.ndarray, limit: int, seconds: float = EXCERPT_S) -> list[np.ndarray]:
    """Up to ``limit`` consecutive non-overlapping excerpts of ``seconds`` (onset-relative) with at least 20 notes."""
    out = []
    for k in range(limit):
        start = notes["start_s"][0] + k * seconds if len(notes) else 0.0
        part = notes[(notes["start_s"] >= start) & (notes["start_s"] < start + seconds)]
        if len(part) < 20:
            break
        out.append(part)
    return out


def _hist(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1] - 1e-9), edges)
    return counts / max(counts.sum(), 1)


def features(notes: np.ndarray) -> np.ndarray:
    """A fixed-length feature vector for one excerpt (a :data:`maestro_cli.symbolic.notes.NOTE_DTYPE` array)."""
    order = np.lexsort((notes["pitch"], notes["start_s"]))
    pitch = notes["pitch"][order].astype(np.float64)
    onset, offset = notes["start_s"][order], notes["end_s"][order]
    pcs = np.bincount(pitch.astype(np.int64) % 12, minlength=12) / len(pitch)
    pcs = np.roll(pcs, -int(np.argmax(pcs)))
    span = max(offset.max() - onset[0], 1e-3)
    grid = np.arange(onset[0], offset.max(), 0.05)
    poly = np.searchsorted(np.sort(onset), grid, side="right") - np.searchsorted(np.sort(offset), grid, side="right")
    return np.concatenate([
        pcs,
        [pitch.mean() / 128, pitch.std() / 24, *np.percentile(pitch, [5, 95]) / 128, len(pitch) / span / 20],
        _hist(np.diff(pitch), np.arange(-24.5, 25.5, 1.0)),
        _hist(np.log10(offset - onset), np.linspace(-2, 1.2, 17)),
        _hist(np.log10(np.diff(onset) + 0.005), np.linspace(-2.3, 0.6, 17)),
        _hist(notes["velocity"].astype(np.float64), np.linspace(0, 128, 17)),
        [notes["velocity"].mean() / 128, notes["velocity"].std() / 32],
        _hist(poly, np.arange(-0.5, 16.5, 1.0)),
    ])


def piece_notes(path: Path) -> np.ndarray:
    """A MIDI file's notes as the tokens represent them."""
    return events.events_to_notes(events.encode_midi(path))


def split_excerpts(root: Path, split: str, per_piece: int) -> tuple[np.ndarray, np.ndarray]:
    """Features and class ids of excerpts of the five composers' pieces in a v3 split."""
    names = {resolve_composer(c): i for i, c in enumerate(COMPOSERS)}
    X, y = [], []
    for row in read_metadata(root / "maestro-v3.0.0.csv"):
        if row["split"] != split or row["canonical_composer"] not in names:
            continue
        for part in excerpts(piece_notes(root / row["midi_filename"]), per_piece):
            X.append(features(part))
            y.append(names[row["canonical_composer"]])
    return np.array(X), np.array(y)


def train(root: Path):
    """The classifier fitted on train-split excerpts."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = split_excerpts(root, "train", 8)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=3000, class_weight="balanced"))
    return model.fit(X, y), len(y)


def accuracy(model, X: np.ndarray, y: np.ndarray) -> dict:
    """Overall and per-composer accuracy."""
    hit = model.predict(X) == y
    return {"accuracy": float(hit.mean()), "n": int(len(y)),
            "per_composer": {c: float(hit[y == i].mean()) for i, c in enumerate(COMPOSERS) if (y == i).any()}}


def main() -> None:
    parser = argument_parser(__doc__, shared=False)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_ROOT, help="the MAESTRO folder (v3 metadata)")
    args = parser.parse_args()
    model, n_train = train(args.dataset)
    real = accuracy(model, *split_excerpts(args.dataset, "test", 4))
    rows = [*real["per_composer"].items(), ("all", real["accuracy"])]
    console().print(table(f"composer classifier, real test excerpts ({real['n']}; trained on {n_train})",
                          ("composer", "accuracy"), [(composer, f"{value:.1%}") for composer, value in rows]))
    emit("composer_classifier", {"train_excerpts": n_train, "real_test": real})


if __name__ == "__main__":
    sys.exit(main())
