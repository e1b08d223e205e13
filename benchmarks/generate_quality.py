"""Generated music against real MAESTRO: stuck notes, and whether the composer can be heard.

Stuck notes: the share of notes longer than 8 s in 5 composers x ``--pieces`` generated 30 s pieces (one batch
per composer, ``--seed``) with the shipped model (or ``--checkpoint``), with and without the sampling-time hold
limit (``-O max_hold``), against every real MAESTRO v3 test piece: key durations (no pedal) and durations with
the sustain pedal folded in (what the tokens encode, hence what generated notes are).

Composer: the classifier of ``benchmarks/composer_classifier.py`` (trained on real train excerpts) on real test
excerpts and on the generated pieces at each ``--guidance`` weight.

Run: ``.venv/bin/python benchmarks/generate_quality.py [--pieces 4] [--guidance 1 2 3] [--threads 1]``.
Prints rich tables (stderr) and one JSON line (stdout).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `maestro generate` does (see passive_openmp)

import numpy as np  # noqa: E402
from common import argument_parser, console, emit, table  # noqa: E402
from composer_classifier import COMPOSERS, DEFAULT_ROOT, accuracy, features, split_excerpts, train  # noqa: E402

from maestro_cli.data.maestro import read_metadata  # noqa: E402
from maestro_cli.symbolic.midi import read_midi  # noqa: E402
from maestro_cli.symbolic.pedal import apply_sustain  # noqa: E402
from maestro_cli.tokens import performance as events  # noqa: E402

LONG_S = 8.0


def generate(composer: str, pieces: int, seed: int, guidance: float, max_hold: float, threads: int,
             checkpoint: Path | None) -> list[np.ndarray]:
    """Notes of ``pieces`` 30 s pieces for one composer through the generate backend."""
    from maestro_cli.backends.transformer import TransformerGenerator, TransformerOptions
    from maestro_cli.protocols import GenerationRequest

    generator = TransformerGenerator(TransformerOptions(device="cpu", threads=threads, max_hold=max_hold))
    request = GenerationRequest(composer=composer, n=pieces, seconds=30.0, seed=seed, guidance=guidance,
                                checkpoint=checkpoint)
    return [read_midi(midi).sounding() for midi in generator.generate(request)]


def long_share(pieces: list[np.ndarray]) -> dict:
    """Notes, notes longer than 8 s, their share (%) and the longest note (s)."""
    durations = np.concatenate([p["end_s"] - p["start_s"] for p in pieces])
    long = int((durations > LONG_S).sum())
    return {"notes": int(len(durations)), "long": long, "share_pct": 100 * long / max(len(durations), 1),
            "longest_s": float(durations.max(initial=0.0))}


def real_test_durations(root: Path) -> dict:
    """The 8 s share of real test pieces: key durations (no pedal) and with the pedal folded in."""
    key, pedal = [], []
    for row in read_metadata(root / "maestro-v3.0.0.csv"):
        if row["split"] == "test":
            notes, pedals = (midi := read_midi(root / row["midi_filename"])).notes, midi.pedal()
            key.append(notes)
            pedal.append(events.events_to_notes(events.notes_to_events(apply_sustain(notes, pedals))))
    return {"key (no pedal)": long_share(key), "pedal folded in": long_share(pedal)}


def main() -> None:
    parser = argument_parser(__doc__, shared=False)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_ROOT, help="the MAESTRO folder (v3 metadata)")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--pieces", type=int, default=4, help="pieces per composer (one batch)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    parser.add_argument("--max-hold", type=float, default=12.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    progress = console()
    started = time.perf_counter()

    runs = {}
    for label, hold, guidance in [("no hold limit", 0.0, 1.0)] + [
            (f"max_hold={args.max_hold:g}, guidance {w:g}", args.max_hold, w) for w in args.guidance]:
        runs[label] = {c: generate(c, args.pieces, args.seed, guidance, hold, args.threads, args.checkpoint)
                       for c in COMPOSERS}
        progress.print(f"{label}: generated ({time.perf_counter() - started:.0f} s)")
    stuck = {label: long_share([p for pieces in run.values() for p in pieces]) for label, run in runs.items()}
    stuck.update({f"real test, {k}": v for k, v in real_test_durations(args.dataset).items()})
    progress.print(table(
        f"notes longer than {LONG_S:g} s (5 composers x {args.pieces} pieces x 30 s; real: test split)",
        ("set", "notes", f"> {LONG_S:g} s", "share", "longest"),
        [(label, f"{row['notes']:,}", row["long"], f"{row['share_pct']:.3f} %", f"{row['longest_s']:.1f} s")
         for label, row in stuck.items()]))

    model, n_train = train(args.dataset)
    composer = {"real test": accuracy(model, *split_excerpts(args.dataset, "test", 4))}
    for label, run in runs.items():
        if label.startswith("max_hold"):
            X = np.array([features(p) for c in COMPOSERS for p in run[c] if len(p) >= 20])
            y = np.array([i for i, c in enumerate(COMPOSERS) for p in run[c] if len(p) >= 20])
            composer[f"generated, W={label.split('guidance ')[1]}"] = accuracy(model, X, y)
    real = composer["real test"]["accuracy"]
    progress.print(table(
        f"composer classifier accuracy (trained on {n_train} real train excerpts of 30 s)",
        ("excerpts", "n", *COMPOSERS, "all", "/ real"),
        [(label, row["n"], *[f"{row['per_composer'].get(c, 0):.0%}" for c in COMPOSERS], f"{row['accuracy']:.1%}",
          f"{row['accuracy'] / real:.0%}") for label, row in composer.items()]))
    emit("generate_quality", {"pieces_per_composer": args.pieces, "seed": args.seed, "long_note_s": LONG_S,
                              "stuck_notes": stuck, "composer_accuracy": composer,
                              "seconds": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    sys.exit(main())
