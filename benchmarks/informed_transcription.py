"""Score-informed transcription benchmark: note F1 (onset, +offset, +velocity) of ``transcribe --score`` against
blind transcription with the same backend, and the deviation report against known score perturbations.

Data: the 4 real MAPS ENSTDk Disklavier recordings, the first ``--seconds`` (default 30) of each, or with
``--seconds 0`` the whole recordings (29.3, 39.9, 85.4 and 68.9 s); ``--after 30`` then scores only the notes and
deviations from 30 s on (the part of the recordings the thresholds were not chosen on). Ground truth: the A-MAPS MIDI
of the same performance, sustain pedal applied, notes starting in the excerpt. Scores: the A-MAPS notes
re-timed to one constant tempo through the beat annotations (each note's position in beats, interpolated between
the annotated beats, times the mean beat length; performance timing and dynamics gone, velocity 64, the annotated
time signatures kept), written as MIDI. Perturbed copies (seeded): ``--perturb`` (5 %) of the notes deleted (the
pianist then plays notes the score lacks: expected ``extra``) and as many wrong notes added at existing score onsets
(a pitch within a fifth that nobody plays within 0.3 s there: expected ``missed``). A reported deviation is right
when it names an added score note (missed or wrong_pitch) or a played note the deletion removed from the score
(extra or wrong_pitch: same pitch, onset within 50 ms); precision over all reported score-side and
played-side findings, recall over the perturbations.

A score of another piece: each transcription aligned to the next excerpt's score gives the confidence of a
mismatch. Cost: CPU seconds of the transcription per second of audio, and of the alignment + combination.
Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/informed_transcription.py [--backend transkun] [-O threads=1]
[--seconds 30|0] [--after S] [--cache DIR] [--no-candidates]``: transcribers with candidates
(:class:`maestro_cli.protocols.CandidateTranscriber`) hand them to the combination unless ``--no-candidates``;
``--cache`` keeps each transcription (and its candidates) and reuses it. Prints a table (stderr) and one JSON line
(stdout).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from common import MAPS, amaps_midi, argument_parser, console, emit, shared_data, table

DATA = shared_data() / MAPS
PIECES = ("MAPS_MUS-chpn-p14_ENSTDkAm", "MAPS_MUS-scn15_9_ENSTDkAm", "MAPS_MUS-scn15_12_ENSTDkCl",
          "MAPS_MUS-chpn-p19_ENSTDkCl")
TPQ = 480


def amaps_files(data: Path, piece: str) -> tuple[Path, Path]:
    """The A-MAPS MIDI and beat annotation of a MAPS piece."""
    midi = amaps_midi(data, piece)
    return midi, midi.with_name(midi.name.split("_A_MAPS_")[0] + "_A_MAPS_annotation.tsv")


def reference(data: Path, piece: str, seconds: float) -> np.ndarray:
    """Ground-truth note list of the excerpt: A-MAPS MIDI, sustain applied, onsets inside, offsets clipped."""
    from maestro_cli.symbolic.midi import read_midi

    notes = read_midi(amaps_files(data, piece)[0]).sounding()
    notes = notes[notes["start_s"] < seconds - 0.1]
    notes["end_s"] = np.minimum(notes["end_s"], seconds)
    return notes


def flattened_notes(data: Path, piece: str, seconds: float) -> tuple[np.ndarray, np.ndarray, list, float]:
    """Played notes of the excerpt (key releases), their score positions in beats, the time signatures
    ``(beat, numerator, denominator)`` and the constant seconds per beat."""
    from maestro_cli.symbolic.midi import read_midi

    midi, annotation = amaps_files(data, piece)
    notes = read_midi(midi).notes
    notes = notes[notes["start_s"] < seconds - 0.1]
    notes = notes[np.lexsort((notes["pitch"], notes["start_s"]))]
    rows = [line.split("\t") for line in annotation.read_text().splitlines() if line.strip()]
    beat_times = np.array([float(time) for time, _ in rows])
    signatures = [(k, *map(int, label.split(",")[1].split("/"))) for k, (_, label) in enumerate(rows)
                  if label.startswith("db,")]
    k = np.arange(len(beat_times), dtype=np.float64)

    def beats(t: np.ndarray) -> np.ndarray:
        inside = np.interp(t, beat_times, k)
        before = (t - beat_times[0]) / (beat_times[1] - beat_times[0])
        after = k[-1] + (t - beat_times[-1]) / (beat_times[-1] - beat_times[-2])
        return np.where(t < beat_times[0], before, np.where(t > beat_times[-1], after, inside))

    within = beat_times <= seconds
    spb = float(np.mean(np.diff(beat_times[within])))
    onsets, offsets = beats(notes["start_s"]), beats(notes["end_s"])
    return notes, np.stack([onsets, np.maximum(offsets, onsets + 0.05)], axis=1), signatures, spb


def write_score(positions: np.ndarray, pitches: np.ndarray, signatures: list, spb: float, path: Path) -> None:
    """A MIDI score: notes at ``positions`` (beats, one beat a quarter) at a constant tempo, velocity 64."""
    import symusic

    score = symusic.Score(TPQ)
    score.tempos.append(symusic.Tempo(0, 60.0 / spb))
    for beat, numerator, denominator in signatures:
        score.time_signatures.append(symusic.TimeSignature(int(round(beat * TPQ)), numerator, denominator))
    track = symusic.Track(name="Piano", program=0, is_drum=False)
    start = np.round(positions[:, 0] * TPQ).astype(np.int32)
    end = np.maximum(np.round(positions[:, 1] * TPQ).astype(np.int32), start + 1)
    track.notes = symusic.Note.from_numpy(time=start, duration=end - start, pitch=pitches.astype(np.int8),
                                          velocity=np.full(len(start), 64, np.int8))
    score.tracks.append(track)
    score.dump_midi(str(path))


def perturbed(notes: np.ndarray, positions: np.ndarray, fraction: float, seed: int):
    """Score positions and pitches with ``fraction`` of the notes deleted and as many wrong ones added; the
    deleted played notes and the added ``(beat, pitch, time in the recording)``."""
    rng = np.random.default_rng(seed)
    n = max(1, int(round(fraction * len(notes))))
    deleted = np.sort(rng.choice(len(notes), n, replace=False))
    keep = np.setdiff1d(np.arange(len(notes)), deleted)
    added = []
    for k in rng.permutation(keep):
        if len(added) == n:
            break
        near = np.abs(notes["start_s"] - notes["start_s"][k]) < 0.3
        for step in rng.permutation([-7, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 7]):
            pitch = int(notes["pitch"][k]) + int(step)
            if 21 <= pitch <= 108 and pitch not in notes["pitch"][near] and (
                    positions[k, 0], pitch) not in [(b, p) for b, p, _, _ in added]:
                added.append((positions[k, 0], pitch, positions[k, 1], notes["start_s"][k]))
                break
    new_positions = np.concatenate([positions[keep], [[b, e] for b, _, e, _ in added]])
    new_pitches = np.concatenate([notes["pitch"][keep], [p for _, p, _, _ in added]]).astype(np.int64)
    return new_positions, new_pitches, notes[deleted], [(b, p, t) for b, p, _, t in added]


def report_scores(result, score_notes: np.ndarray, deleted: np.ndarray, added: list, after: float = 0.0) -> dict:
    """Precision/recall/F1 of the deviations against the perturbations (those played from ``after`` s on, and the
    deviations reported there)."""
    added_ids = {str(i) for i, q, p in zip(score_notes["id"], score_notes["onset_quarters"], score_notes["pitch"])
                 if any(abs(q - b) < 1e-3 and p == ap and t >= after for b, ap, t in added)}
    deleted = deleted[deleted["start_s"] >= after]
    rows = [row for row in result.deviations if row["time_s"] >= after]
    score_side = [row["score_id"] for row in rows if row["kind"] in ("missed", "wrong_pitch")]
    played_side = [(row["played_pitch"] or row["pitch"], row["time_s"]) for row in rows
                   if row["kind"] in ("extra", "wrong_pitch")]
    tp_score = len(set(score_side) & added_ids)
    free = list(zip(deleted["pitch"].tolist(), deleted["start_s"].tolist()))
    tp_played = 0
    for pitch, t in played_side:
        hit = next((j for j, (p, u) in enumerate(free) if p == pitch and abs(u - t) <= 0.05), None)
        if hit is not None:
            free.pop(hit)
            tp_played += 1
    found, total = len(score_side) + len(played_side), len(added_ids) + len(deleted)
    precision, recall = (tp_score + tp_played) / max(found, 1), (tp_score + tp_played) / max(total, 1)
    return {"report_precision": precision, "report_recall": recall,
            "report_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "perturbations": total, "reported": found}


def cached(cache: Path, backend: str, options: list[str], seconds: float, piece: str) -> Path:
    """The cache path of a transcription: backend, options, excerpt length (0: whole) and piece in the name."""
    cache.mkdir(parents=True, exist_ok=True)
    joined = "_".join(sorted(options)).replace("/", "-").replace("=", "")
    length = f"{seconds:g}s" if seconds else "whole"
    return cache / f"{backend}_{joined}_{length}_{piece}.mid"  # + .npz: the candidates


def main() -> None:
    parser = argument_parser(__doc__, shared=False)
    parser.add_argument("--backend", default="onsets-frames")
    parser.add_argument("--aligner", default=None)
    parser.add_argument("-O", "--option", action="append", default=[], help="transcriber option key=value")
    parser.add_argument("--seconds", type=float, default=30.0, help="the first SECONDS of each recording (0: whole)")
    parser.add_argument("--after", type=float, default=0.0,
                        help="score only the notes and deviations from AFTER seconds on (recordings as long or shorter "
                             "are left out)")
    parser.add_argument("--pieces", default=",".join(PIECES))
    parser.add_argument("--perturb", type=float, default=0.05)
    parser.add_argument("--data", type=Path, default=DATA, help="the MAPS Disklavier folder (flac/, a-maps/)")
    parser.add_argument("--no-candidates", action="store_true",
                        help="ignore the transcriber's candidates (the blind transcription's notes only)")
    parser.add_argument("--recover", type=float, default=None,
                        help="the candidate confidence that confirms a left-out score note (default: informed.RECOVER; "
                             "below the backend's candidate floor it changes nothing)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep the transcriptions in this folder and reuse them (same backend and options)")
    args = parser.parse_args()

    import soundfile

    from maestro_cli.align import informed
    from maestro_cli.metrics.transcription import evaluate_notes
    from maestro_cli.registry import create_backend
    from maestro_cli.symbolic.midi import read_midi
    from maestro_cli.symbolic.pedal import apply_sustain
    from maestro_cli.symbolic.scores import read_score

    transcriber = create_backend("transcriber", args.backend, args.option)
    searching = hasattr(transcriber, "transcribe_candidates") and not args.no_candidates
    aligner = create_backend("aligner", args.aligner, [])
    pieces = args.pieces.split(",")
    rows, folder = [], Path(tempfile.mkdtemp(prefix="informed-bench-"))
    transcriptions, scores = {}, {}
    audio_seconds = cpu_transcribe = cpu_inform = 0.0
    for number, piece in enumerate(pieces):
        audio, rate = soundfile.read(args.data / "flac" / f"{piece}.flac", dtype="float32",
                                     frames=int(args.seconds * 16000) if args.seconds else -1)
        seconds = args.seconds or np.inf
        if len(audio) / rate <= args.after:
            continue
        clip = folder / f"{piece}.wav"
        soundfile.write(clip, audio, rate)
        blind = folder / f"{piece}.blind.mid"
        if args.cache:
            blind = cached(args.cache, args.backend, args.option, args.seconds, piece)
        evidence = blind.with_suffix(".npz")
        if not blind.is_file() or (searching and not evidence.is_file()):
            start = time.process_time()
            if searching:
                found, confidence = transcriber.transcribe_candidates(clip, blind)
                np.savez(evidence, notes=found, confidence=confidence)
            else:
                transcriber.transcribe(clip, blind)
            cpu_transcribe += time.process_time() - start
            audio_seconds += len(audio) / rate
        candidates = (lambda saved: (saved["notes"], saved["confidence"]))(np.load(evidence)) if searching else None
        ref = reference(args.data, piece, seconds)
        ref = ref[ref["start_s"] >= args.after]

        def evaluated(est: np.ndarray) -> dict:
            return evaluate_notes(ref, est[(est["start_s"] >= args.after) & (est["start_s"] < seconds - 0.1)])

        scored = evaluated(read_midi(blind).sounding())
        rows.append({"piece": piece, "score": "none (blind)", **scored})
        notes, positions, signatures, spb = flattened_notes(args.data, piece, seconds)
        variants = {"flattened": (positions, notes["pitch"].astype(np.int64), notes[:0], [])}
        variants["perturbed"] = perturbed(notes, positions, args.perturb, seed=number)
        transcriptions[piece] = blind
        for name, (pos, pitches, deleted, added) in variants.items():
            path = folder / f"{piece}.{name}.mid"
            write_score(pos, pitches, signatures, spb, path)
            scores.setdefault(piece, path)
            start = time.process_time()
            alignment = aligner.align(blind, path, kind="midi")
            matched = informed.note_alignment(alignment, read_midi(blind).piano_notes())
            result = informed.informed(matched, np.asarray(alignment.score_times, float),
                                       np.asarray(alignment.performance_times, float), candidates,
                                       recover=informed.RECOVER if args.recover is None else args.recover)
            cpu_inform += time.process_time() - start
            pedals = read_midi(blind).pedal()
            est = apply_sustain(result.notes, pedals)
            row = {"piece": piece, "score": name, "confidence": result.confidence,
                   **evaluated(est), **result.counts}
            if name == "perturbed":
                row.update(report_scores(result, read_score(path).notes, deleted, added, args.after))
            else:
                row["reported"] = len(result.deviations)
            rows.append(row)
    pieces = list(transcriptions)
    for k, piece in enumerate(pieces if len(pieces) > 1 else []):  # another piece's score
        other = scores[pieces[(k + 1) % len(pieces)]]
        matched = informed.note_alignment(aligner.align(transcriptions[piece], other, kind="midi"),
                                          read_midi(transcriptions[piece]).piano_notes())
        rows.append({"piece": piece, "score": f"other piece ({other.name.split('.')[0]})",
                     "confidence": matched.f_measure()})

    columns = ("piece", "score", "note_f1", "note_offset_f1", "note_offset_velocity_f1", "confidence", "reported",
               "report_precision", "report_recall", "report_f1")
    summary = {}
    for kind in ("none (blind)", "flattened", "perturbed"):
        chosen = [r for r in rows if r["score"] == kind]
        summary[kind] = {key: round(float(np.mean([r[key] for r in chosen])), 4) for key in columns[2:]
                         if all(key in r for r in chosen)}
    others = [r["confidence"] for r in rows if r["score"].startswith("other")]
    summary["other piece"] = {"confidence_max": max(others)} if others else {}
    progress = console(width=160)
    progress.print(table(
        f"score-informed transcription, {args.backend} {' '.join(args.option)}, MAPS "
        f"{f'first {args.seconds:g} s' if args.seconds else 'whole recordings'}"
        f"{f', scored from {args.after:g} s on' if args.after else ''}",
        [c.replace("note_offset_velocity_f1", "+vel F1").replace("note_offset_f1", "+off F1") for c in columns],
        [[f"{row[c]:.3f}" if isinstance(row.get(c), float) else row.get(c, "") for c in columns]
         for row in rows + [{"piece": "MEAN", "score": kind, **values} for kind, values in summary.items()]],
        left=2))
    transcription_cpu = cpu_transcribe / audio_seconds if audio_seconds else None
    progress.print(f"CPU seconds: transcription {transcription_cpu or float('nan'):.2f} per second of audio (not "
                   f"cached), alignment + combination {cpu_inform / (2 * len(pieces)):.2f} per excerpt and score")
    emit("informed_transcription", {
        "backend": args.backend, "options": args.option, "seconds": args.seconds, "after": args.after,
        "recover": informed.RECOVER if args.recover is None else args.recover, "summary": summary,
        "transcription_cpu_s_per_audio_s": transcription_cpu,
        "inform_cpu_s_per_score": round(cpu_inform / (2 * len(pieces)), 3), "rows": rows})


if __name__ == "__main__":
    main()
