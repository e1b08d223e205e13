"""How much evidence a transcriber's candidates hold for the score notes its transcription left out: played notes
against the perturbed score's wrong notes, per confidence bin (what a candidate floor for recovery should separate).

Reads the whole-recording transcriptions and candidates that ``informed_transcription.py --seconds 0 --cache DIR``
keeps, made with a low candidate floor, e.g. ``-O candidate_floor=0.002``; builds the same flattened and perturbed
scores and alignments. A left-out score note's evidence is the highest confidence of a candidate of its pitch within
``informed.SEARCH_S`` of its aligned onset that is not a transcribed note (0 without one). Prints, for the pieces
the floors were chosen on, the others, the first 30 s and the rest: played and wrong left-out notes per bin, and
random (key, time) pairs where nothing of that key sounds within 0.3 s. One JSON line per note on --rows.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from common import argument_parser
from informed_transcription import DATA, PIECES, TPQ, cached, flattened_notes, perturbed, reference, write_score

EDGES = (0.002, 0.005, 0.01, 0.02, 0.05, 1.0001)
CHOSEN_ON = ("MAPS_MUS-chpn-p14_ENSTDkAm", "MAPS_MUS-scn15_12_ENSTDkCl")


def main() -> None:
    parser = argument_parser(__doc__, shared=False)
    parser.add_argument("--backend", default="onsets-frames")
    parser.add_argument("-O", "--option", action="append", default=[], help="the options of the cached run")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA, help="the MAPS Disklavier folder (flac/, a-maps/)")
    parser.add_argument("--rows", type=Path, default=None, help="write every measured note here (JSON lines)")
    args = parser.parse_args()

    from maestro_cli.align import informed
    from maestro_cli.align.note_matching import extrapolated
    from maestro_cli.registry import create_backend
    from maestro_cli.symbolic.midi import read_midi

    aligner, folder = create_backend("aligner", None, []), Path(tempfile.mkdtemp())
    rng, rows = np.random.default_rng(0), []
    for number, piece in enumerate(PIECES):
        blind = cached(args.cache, args.backend, args.option, 0, piece)  # whole recordings
        saved = np.load(blind.with_suffix(".npz"))
        found, confidence = saved["notes"], saved["confidence"]
        played = read_midi(blind).piano_notes()
        fresh = np.array([not informed._same_event(note, played) for note in found], bool)

        def evidence(pitch: int, t: float) -> float:
            near = fresh & (found["pitch"] == pitch) & (np.abs(found["start_s"] - t) <= informed.SEARCH_S)
            return float(np.max(confidence[near], initial=0.0))

        notes, positions, signatures, spb = flattened_notes(args.data, piece, np.inf)
        pos, pitches, _, added = perturbed(notes, positions, 0.05, seed=number)  # as the benchmark draws them
        path = folder / f"{piece}.mid"
        write_score(pos, pitches, signatures, spb, path)
        alignment = aligner.align(blind, path, kind="midi")
        matched = informed.note_alignment(alignment, played)
        score = matched.score.notes
        left = np.setdiff1d(np.arange(len(score)), matched.score_index)
        aligned = extrapolated(score["start_s"][left], np.asarray(alignment.score_times, float),
                               np.asarray(alignment.performance_times, float))
        wrong = {(round(beat * TPQ), pitch) for beat, pitch, _ in added}
        for s, t in zip(left, aligned):
            kind = "wrong" if (round(score["onset_quarters"][s] * TPQ), int(score["pitch"][s])) in wrong else "played"
            rows.append({"piece": piece, "kind": kind, "pitch": int(score["pitch"][s]), "time_s": round(float(t), 3),
                         "evidence": evidence(int(score["pitch"][s]), t)})
        ref = reference(args.data, piece, np.inf)
        while sum(row["piece"] == piece and row["kind"] == "random" for row in rows) < 500:
            pitch, t = int(rng.integers(21, 109)), float(rng.uniform(1.0, ref["end_s"].max() - 1.0))
            same = ref[ref["pitch"] == pitch]
            if not np.any((same["start_s"] < t + 0.3) & (same["end_s"] > t - 0.3)):
                rows.append({"piece": piece, "kind": "random", "pitch": pitch, "time_s": round(t, 3),
                             "evidence": evidence(pitch, t)})
    if args.rows:
        args.rows.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    bins = " ".join(f"[{lo:g},{hi:g})" for lo, hi in zip(EDGES, EDGES[1:]))
    print(f"{args.backend} {' '.join(args.option)}: left-out score notes, played:wrong per evidence bin {bins}")
    for name, keep in (("chosen on (chpn-p14, scn15_12)", lambda row: row["piece"] in CHOSEN_ON),
                       ("checked on (scn15_9, chpn-p19)", lambda row: row["piece"] not in CHOSEN_ON),
                       ("first 30 s", lambda row: row["time_s"] < 30),
                       ("from 30 s on", lambda row: row["time_s"] >= 30),
                       ("all", lambda row: True)):
        values = {kind: np.array([row["evidence"] for row in rows if row["kind"] == kind and keep(row)])
                  for kind in ("played", "wrong", "random")}
        cells = " ".join(f"{int(np.sum((values['played'] >= lo) & (values['played'] < hi)))}:"
                         f"{int(np.sum((values['wrong'] >= lo) & (values['wrong'] < hi)))}"
                         for lo, hi in zip(EDGES, EDGES[1:]))
        print(f"  {name:32s} played {len(values['played']):3d}, wrong {len(values['wrong']):3d}: {cells}; "
              f"random (nothing played) >= {EDGES[0]:g}: {np.mean(values['random'] >= EDGES[0]):.3f}")


if __name__ == "__main__":
    main()
