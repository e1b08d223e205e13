"""Generation-statistics benchmark: our feature extraction against the pretty_midi route mgeval takes, same run.

Input: the first N MAESTRO v3 test-split MIDI files (default 40; 177 for the whole split). Ours parses with
symusic, applies the sustain pedal and computes the seven features of ``maestro_cli.metrics.generation``
(vectorised numpy). The peer is what Yang & Lerch's mgeval does per piece: ``pretty_midi.PrettyMIDI`` parsing,
then pitch-class histogram (``get_pitch_class_histogram``), pitch range, note density, IOIs (``get_onsets``),
durations, velocities and polyphony from ``get_piano_roll(fs=20)`` (no sustain). Files alternate between the two
so a busy machine slows both alike. Prints pieces/s for each, the ratio, and ours' overlap/KL of the first half of
the files against the second half (a sanity figure: real music against real music).

Run: ``.venv/bin/python benchmarks/evaluate.py [--files 40] [--shared ../shared/data]``.
Prints a rich table and one JSON line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import MAESTRO_MIDI, argument_parser, console, emit, table, timed

from maestro_cli.data.maestro import open_dataset
from maestro_cli.metrics import generation as gm
from maestro_cli.symbolic.midi import read_midi


def ours(path: Path) -> dict[str, np.ndarray]:
    notes = read_midi(path).sounding()
    return {name: feature.sample(notes) for name, feature in gm.FEATURES.items()}


def peer(path: Path) -> dict[str, np.ndarray]:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    notes = [note for instrument in pm.instruments for note in instrument.notes]
    pitches = np.array([note.pitch for note in notes])
    onsets = pm.get_onsets()
    return {
        "pitch_class": pm.get_pitch_class_histogram(),
        "pitch_range": np.array([np.ptp(pitches)]),
        "note_density": np.array([len(notes) / pm.get_end_time()]),
        "ioi": np.diff(onsets),
        "duration": np.array([note.end - note.start for note in notes]),
        "velocity": np.array([note.velocity for note in notes]),
        "polyphony": (pm.get_piano_roll(fs=20) > 0).sum(axis=0),
    }


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--files", type=int, default=40)
    args = parser.parse_args()
    records = open_dataset(args.shared / MAESTRO_MIDI, version="v3").filter(split="test").records
    paths = [record.midi_path for record in records[:args.files]]
    seconds = {"ours": 0.0, "pretty_midi": 0.0}
    with console().status("extracting features") as status:
        for i, path in enumerate(paths):
            status.update(f"extracting features {i + 1}/{len(paths)}")
            for name, extract in (("ours", ours), ("pretty_midi", peer)):
                seconds[name] += timed(lambda: extract(path))[0]
    half = len(paths) // 2
    pieces = [read_midi(p).sounding() for p in paths]
    summary = gm.compare(pieces[:half], pieces[half:])["summary"]
    result = {"files": len(paths),
              "ours_pieces_per_s": len(paths) / seconds["ours"],
              "pretty_midi_pieces_per_s": len(paths) / seconds["pretty_midi"],
              "speedup": seconds["pretty_midi"] / seconds["ours"],
              "half_vs_half_overlap_mean": summary["overlap_mean"], "half_vs_half_kl_mean": summary["kl_mean"]}
    caption = (f"speed-up {result['speedup']:.1f}x; first half vs second half: overlap "
               f"{summary['overlap_mean']:.3f}, KL {summary['kl_mean']:.3f}")
    console(stdout=True).print(table(
        f"generation statistics, {len(paths)} MAESTRO test pieces", ("extractor", "seconds", "pieces/s"),
        [(name, f"{value:.2f}", f"{len(paths) / value:.1f}") for name, value in seconds.items()], caption=caption))
    emit("evaluate-generation", result)


if __name__ == "__main__":
    main()
