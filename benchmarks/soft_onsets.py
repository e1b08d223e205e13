"""Are a transcriber's late soft onsets late in the audio? Onset errors per velocity band against the audio's own rise.

For the reference notes (A-MAPS MIDI of the 4 MAPS ENSTDk excerpts, as in informed_transcription.py) that start
alone (no other reference onset within ``--isolation`` s, so the pitch's energy can only rise because of this note)
and that the transcription has (same pitch within 0.2 s), per velocity band: the median of the transcribed onset
minus the reference onset, and of the audio's rise minus the reference onset. The rise: the frame (5 ms hop) of the
largest increase, between -60 and +160 ms, of the pitch's log magnitude (32 ms Hann STFT, the nearest bin of its
fundamental and first two harmonics, summed). On-time notes (the loud band) show where that measure sits; if the
soft band's rise is as late as the transcription, the audio is late and the reference early. For the notes
transcribed more than 50 ms late: how many have the audio's rise within 25 ms of the transcribed onset, and how many
within 25 ms of the reference onset.
Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/soft_onsets.py
[--transcriptions /tmp/informed-cache/transkun_threads1_30s_{piece}.mid]`` (e.g. the cache of
informed_transcription.py); prints a table (stderr) and one JSON line (stdout).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import argument_parser, console, emit, table
from informed_transcription import DATA, PIECES, reference

BANDS = ((0, 40), (40, 60), (60, 128))
HOP_S, WINDOW_S = 0.005, 0.032


def pitch_energy(audio: np.ndarray, rate: int, pitch: int) -> np.ndarray:
    """Log magnitude of ``pitch``'s fundamental and first two harmonics (nearest bins, summed), one value a hop."""
    import librosa

    n_fft, hop = int(round(WINDOW_S * rate)), int(round(HOP_S * rate))
    log = np.log1p(1000.0 * np.abs(librosa.stft(audio, n_fft=n_fft, hop_length=hop)))
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    bins = [int(round(h * f0 * n_fft / rate)) for h in (1, 2, 3) if h * f0 < rate / 2]
    return log[bins].sum(axis=0)


def _median_ms(values: np.ndarray) -> float | None:
    return round(1000 * float(np.median(values)), 1) if len(values) else None


def main() -> None:
    parser = argument_parser(__doc__, shared=False)
    parser.add_argument("--transcriptions", default="/tmp/informed-cache/transkun_threads1_30s_{piece}.mid",
                        help="the transcription of each excerpt, {piece} the MAPS name")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--isolation", type=float, default=0.1)
    parser.add_argument("--data", type=Path, default=DATA, help="the MAPS Disklavier folder (flac/, a-maps/)")
    args = parser.parse_args()

    import soundfile

    from maestro_cli.symbolic.midi import read_midi

    rows = []
    for piece in PIECES:
        audio, rate = soundfile.read(args.data / "flac" / f"{piece}.flac", frames=int(args.seconds * 16000),
                                     dtype="float32")
        audio = audio.mean(axis=1) if audio.ndim > 1 else audio
        ref = reference(args.data, piece, args.seconds)
        est = read_midi(args.transcriptions.format(piece=piece)).sounding()
        energy = {}
        found = []
        for note in ref:
            others = np.abs(ref["start_s"] - note["start_s"]) < args.isolation
            same = est[(est["pitch"] == note["pitch"]) & (np.abs(est["start_s"] - note["start_s"]) < 0.2)]
            if others.sum() > 1 or not len(same):
                continue
            pitch = int(note["pitch"])
            if pitch not in energy:
                energy[pitch] = pitch_energy(audio, rate, pitch)
            first = int(round((note["start_s"] - 0.06) / HOP_S))
            rise = np.diff(energy[pitch][first:int(round((note["start_s"] + 0.16) / HOP_S)) + 1])
            onset = same["start_s"][np.argmin(np.abs(same["start_s"] - note["start_s"]))]
            found.append((note["velocity"], onset - note["start_s"], (first + 1 + np.argmax(rise)) * HOP_S
                          - note["start_s"]))
        found = np.array(found, dtype=float).reshape(-1, 3)
        for low, high in BANDS:
            band = found[(found[:, 0] >= low) & (found[:, 0] < high)]
            if not len(band):
                continue
            late = band[band[:, 1] > 0.05]
            rows.append({"piece": piece.removeprefix("MAPS_MUS-"), "velocity": f"{low}-{high - 1}", "notes": len(band),
                         "transcribed_ms": _median_ms(band[:, 1]), "audio_rise_ms": _median_ms(band[:, 2]),
                         "transcribed_minus_rise_ms": _median_ms(band[:, 1] - band[:, 2]),
                         "late": len(late), "late_transcribed_ms": _median_ms(late[:, 1]),
                         "late_audio_rise_ms": _median_ms(late[:, 2]),
                         "late_rise_at_transcribed": int(np.sum(np.abs(late[:, 2] - late[:, 1]) <= 0.025)),
                         "late_rise_at_reference": int(np.sum(np.abs(late[:, 2]) <= 0.025))})
    console(width=160).print(table("isolated reference notes: onset minus reference onset (median, ms)",
                                   [column.replace("_", " ") for column in rows[0]],
                                   [row.values() for row in rows], left=2))
    emit("soft_onsets", {"transcriptions": args.transcriptions, "rows": rows})


if __name__ == "__main__":
    main()
