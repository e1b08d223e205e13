"""The data of a practice report: every score and played note with its status, the measures, tempo and loudness per
beat, the pedal, and a summary (schema :data:`SCHEMA`, documented in docs/report.md).

A performance is first paired with its score (:class:`Paired`): a recording by score-informed transcription
(:func:`maestro_cli.align.transcribed.score_informed`), a MIDI performance by the aligner directly. :func:`build`
turns the pairs into the report's dict; nothing here prints or writes files.

Statuses: ``correct`` (a score note played as written), ``missed`` (a score note not played), ``extra`` (a played
note the score lacks) and ``wrong_pitch`` (a missed note and an extra note at most
:data:`maestro_cli.align.informed.WRONG_PITCH_INTERVAL` semitones apart, starting within
:data:`maestro_cli.align.informed.WRONG_PITCH_WINDOW` s of each other: one row with both pitches).

Times are seconds in the performance. Beats are the time signature's beats (its denominator's note value) counted
from the score's start; the beat times come from the played chords (the median onset of the notes played as
written at each score onset) and, where there are none, from the alignment's time map. A note's timing deviation
is its onset minus where the local tempo (a straight line through the chords within :data:`LOCAL_BEATS` beats)
puts its score onset.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maestro_cli.errors import MaestroError

SCHEMA = "maestro-report/1"
STATUSES = ("correct", "missed", "extra", "wrong_pitch")
#: Beats either side of a beat whose played chords give the local tempo a note's timing is measured against.
LOCAL_BEATS = 2.0
NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass
class Paired:
    """A performance paired with its score: played notes (NOTE_DTYPE), pairs of indices (``correct`` and
    ``wrong``), the alignment's time map (score seconds to performance seconds) and the pedal (control rows)."""

    kind: str  # "audio" or "midi"
    path: Path
    score: Any  # maestro_cli.symbolic.scores.Score
    played: np.ndarray
    correct: np.ndarray  # (k, 2) score index, played index
    wrong: np.ndarray  # (k, 2) score index, played index of another pitch
    map_score: np.ndarray
    map_performance: np.ndarray
    controls: np.ndarray  # rows (time_s, controller, value)
    confidence: float
    duration_s: float


def performance_report(performance: Path, score: Path, aligner, transcriber=None) -> tuple[dict, Paired]:
    """The report's data for ``performance`` (a recording or a MIDI file, told by its content) against ``score``:
    a recording is transcribed by ``transcriber()`` (called only then), a MIDI file aligned directly."""
    from maestro_cli.align.io import detect_kind
    from maestro_cli.symbolic.scores import score_metadata

    performance, score = Path(performance), Path(score)
    if not score.is_file():
        raise MaestroError("no such file", score)
    if detect_kind(performance) == "audio":
        paired = pair_audio(performance, score, transcriber(), aligner)
    else:
        paired = pair_midi(performance, score, aligner)
    return build(paired, **score_metadata(score)), paired


def pair_midi(performance: Path, score: Path, aligner) -> Paired:
    """A MIDI performance paired with ``score`` by ``aligner`` (its note pairs, or notes matched through its time
    map); every unpaired note is missed or extra, neighbouring pitches at one time are wrong pitches."""
    from maestro_cli.align.informed import note_alignment
    from maestro_cli.symbolic.midi import read_midi

    if not Path(score).is_file():
        raise MaestroError("no such file", score)
    midi = read_midi(performance)
    played = midi.piano_notes()
    alignment = aligner.align(performance, score, kind="midi")
    notes = note_alignment(alignment, played)
    map_score, map_performance = _time_map(alignment)
    correct = np.stack([notes.score_index, notes.performance_index], axis=1).astype(np.int64).reshape(-1, 2)
    missed = np.setdiff1d(np.arange(len(notes.score.notes)), notes.score_index)
    extra = np.setdiff1d(np.arange(len(notes.performance)), notes.performance_index)
    wrong = _wrong_pitches(notes.score.notes, missed, notes.performance, extra, map_score, map_performance)
    controls = midi.controls
    end = max(float(notes.performance["end_s"].max()), float(controls[-1, 0]) if len(controls) else 0.0)
    return Paired("midi", Path(performance), notes.score, notes.performance, correct, wrong, map_score,
                  map_performance, controls, round(notes.f_measure(), 4), end)


def pair_audio(audio: Path, score: Path, transcriber, aligner) -> Paired:
    """A recording paired with ``score`` by score-informed transcription: the informed result's notes (the
    transcription confirmed, completed from the transcriber's candidates, its likely errors dropped) and its
    deviations."""
    from maestro_cli.align import informed
    from maestro_cli.align.transcribed import score_informed
    from maestro_cli.audio.io import probe_audio

    run = score_informed(audio, score, transcriber, aligner)
    map_score, map_performance = _time_map(run.alignment)
    result = run.result or informed.informed(run.notes, map_score, map_performance, run.transcription.candidates)
    score_notes, played = run.notes.score.notes, result.notes
    index = {note_id: k for k, note_id in enumerate(score_notes["id"].tolist())}
    taken = np.zeros(len(played), bool)

    def take(pitch: int, time: float, window: float) -> int:
        options = np.flatnonzero(~taken & (played["pitch"] == pitch) & (np.abs(played["start_s"] - time) <= window))
        if not len(options):
            return -1
        best = options[np.argmin(np.abs(played["start_s"][options] - time))]
        taken[best] = True
        return int(best)

    correct, wrong = [], []
    transcribed = run.notes.performance
    for s, p in zip(run.notes.score_index.tolist(), run.notes.performance_index.tolist()):
        k = take(int(transcribed["pitch"][p]), float(transcribed["start_s"][p]), 1e-6)
        if k >= 0:
            correct.append((s, k))
    for row in result.deviations:
        if row["kind"] == "wrong_pitch":
            k = take(row["played_pitch"], row["time_s"], 1e-3)
            if k >= 0:
                wrong.append((index[row["score_id"]], k))
    left_out = {index[row["score_id"]] for row in result.deviations if row["kind"] in ("missed", "wrong_pitch")}
    recovered = sorted(set(range(len(score_notes))) - left_out - {s for s, _ in correct})
    mapped = extrapolated_map(score_notes["start_s"][recovered], map_score, map_performance)
    for s, time in zip(recovered, mapped):  # confirmed from the transcriber's candidates
        k = take(int(score_notes["pitch"][s]), float(time), informed.SEARCH_S + informed.SAME_ONSET_S)
        if k >= 0:
            correct.append((s, k))
    return Paired("audio", Path(audio), run.notes.score, played, _pairs(correct), _pairs(wrong), map_score,
                  map_performance, run.transcription.controls, round(run.confidence, 4),
                  round(probe_audio(audio).duration, 3))


def extrapolated_map(times: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """A piecewise-linear map at ``times``, continued beyond its ends at its edge slopes."""
    from maestro_cli.align.note_matching import extrapolated

    return extrapolated(np.asarray(times, float), np.asarray(xp, float), np.asarray(fp, float))


def build(paired: Paired, title: str | None = None, composer: str | None = None) -> dict:
    """The report's data (:data:`SCHEMA`) for a paired performance; ``title``/``composer`` from the score."""
    from maestro_cli.align.informed import MIN_CONFIDENCE

    score, played = paired.score.notes, paired.played
    status_rows = _note_rows(paired)
    beats = _beat_map(paired)
    grid, times = beats["beats"], beats["times"]
    expected = beats["expected"]
    measures = _measure_starts(paired.score)
    starts = np.array([start for _, start in measures])
    onset = score["onset_beats"].astype(float)
    score_start = expected(onset)
    score_end = np.maximum(expected(onset + np.maximum(score["duration_beats"], 0.0)), score_start + 0.05)
    score_measure = np.clip(np.searchsorted(starts, onset + 1e-6, side="right") - 1, 0, len(starts) - 1)
    played_beats = np.interp(played["start_s"], times, grid)
    played_measure = np.clip(np.searchsorted(starts, played_beats + 1e-6, side="right") - 1, 0, len(starts) - 1)
    rows = []
    for status, s, p in status_rows:
        row: dict[str, Any] = {"status": status}
        if s >= 0:
            note, k = score[s], int(score_measure[s])
            row.update(pitch=int(note["pitch"]), name=pitch_name(note["pitch"]), score_id=str(note["id"]),
                       measure=measures[k][0], beat=round(float(onset[s] - starts[k] + 1.0), 3),
                       score_beats=round(float(onset[s]), 3), score_start=round(float(score_start[s]), 3),
                       score_end=round(float(score_end[s]), 3))
        if p >= 0:
            note = played[p]
            row.update(played_pitch=int(note["pitch"]), played_name=pitch_name(note["pitch"]),
                       start=round(float(note["start_s"]), 3), end=round(float(note["end_s"]), 3),
                       velocity=int(note["velocity"]))
            if s >= 0:
                row["deviation_ms"] = round(1000.0 * float(note["start_s"] - score_start[s]), 1)
            else:
                k = int(played_measure[p])
                row.update(measure=measures[k][0], beat=round(float(played_beats[p] - starts[k] + 1.0), 3),
                           score_beats=round(float(played_beats[p]), 3))
        rows.append((row, k))
    rows.sort(key=lambda item: (item[0].get("start", item[0].get("score_start")),
                                item[0].get("pitch", item[0].get("played_pitch"))))
    rows, where = [row for row, _ in rows], [k for _, k in rows]
    counts = {status: sum(row["status"] == status for row in rows) for status in STATUSES}
    tempo, marking = beats["tempo"], beats["marking"]
    inside = beats["inside"]
    measured = tempo[inside] if inside.any() else tempo
    pedal = _pedal(paired.controls, paired.duration_s)
    low = paired.confidence < MIN_CONFIDENCE
    span = times[beats["last"]] - times[beats["first"]]
    return {
        "schema": SCHEMA,
        "piece": {"title": title, "composer": composer, "score": Path(paired.score.path).name,
                  "score_format": paired.score.format, "score_variant": paired.score.variant,
                  "tempo_marked": _tempo_marked(paired.score)},
        "performance": {"path": paired.path.name, "kind": paired.kind, "duration_s": round(paired.duration_s, 3)},
        "backends": {},  # the caller names them
        "confidence": paired.confidence,
        "warning": (f"low alignment confidence {paired.confidence:.2f} (below {MIN_CONFIDENCE}): is the score of "
                    "another piece?") if low else None,
        "summary": {
            "score_notes": int(len(score)), "played_notes": int(len(played)), **counts,
            "accuracy": round(counts["correct"] / max(1, len(score)), 4),
            "tempo_bpm": round(float(60.0 * (beats["last"] - beats["first"]) / span), 1) if span > 0 else None,
            "tempo_range_bpm": [round(float(np.percentile(measured, q)), 1) for q in (10, 90)],
            "marking_bpm": round(float(np.median(marking)), 1),
            "timing_ms": _mean_abs([row.get("deviation_ms") for row in rows]),
            "velocity": _mean([row.get("velocity") for row in rows]),
            "pedal_presses": len(pedal), "pedal_down_fraction": round(sum(b - a for a, b in pedal)
                                                                      / max(paired.duration_s, 1e-9), 3),
        },
        "notes": rows,
        "measures": _measures(measures, rows, where, beats),
        "beats": {"beats": _rounded(grid, 3), "time": _rounded(times, 3), "tempo_bpm": _rounded(tempo, 1),
                  "marking_bpm": _rounded(marking, 1), "velocity": beats["velocity"]},
        "pedal": [[round(a, 3), round(b, 3)] for a, b in pedal],
    }


def pitch_name(pitch: int) -> str:
    """Scientific pitch notation: 60 is C4."""
    return f"{NAMES[int(pitch) % 12]}{int(pitch) // 12 - 1}"


def _time_map(alignment) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(alignment.score_times, float), np.asarray(alignment.performance_times, float)


def _pairs(pairs: list) -> np.ndarray:
    return np.asarray(pairs, np.int64).reshape(-1, 2)


def _wrong_pitches(score: np.ndarray, missed: np.ndarray, played: np.ndarray, extra: np.ndarray,
                   map_score: np.ndarray, map_performance: np.ndarray) -> np.ndarray:
    """Closest-first pairs (score index, played index) of a missed score note and an extra played note of a
    neighbouring pitch starting within the window of its aligned time (the rule of
    :func:`maestro_cli.align.informed.wrong_pitch_pairs`)."""
    from maestro_cli.align.informed import WRONG_PITCH_WINDOW, wrong_pitch_pairs

    times = extrapolated_map(score["start_s"][missed], map_score, map_performance)
    pairs = wrong_pitch_pairs(times, score["pitch"][missed], played["start_s"][extra], played["pitch"][extra],
                              WRONG_PITCH_WINDOW)
    return _pairs([(missed[m], extra[e]) for m, e in pairs])


def _note_rows(paired: Paired) -> list[tuple[str, int, int]]:
    """(status, score index or -1, played index or -1) for every score and played note."""
    out = [("correct", int(s), int(p)) for s, p in paired.correct] + [("wrong_pitch", int(s), int(p))
                                                                       for s, p in paired.wrong]
    used_s = set(paired.correct[:, 0].tolist()) | set(paired.wrong[:, 0].tolist())
    used_p = set(paired.correct[:, 1].tolist()) | set(paired.wrong[:, 1].tolist())
    out += [("missed", s, -1) for s in range(len(paired.score.notes)) if s not in used_s]
    out += [("extra", -1, p) for p in range(len(paired.played)) if p not in used_p]
    return out


def _beat_map(paired: Paired) -> dict:
    """Beat times in the performance, the tempo and marking per beat, loudness per beat, and ``expected``: score
    beats to performance seconds through the local tempo."""
    score, played = paired.score.notes, paired.played
    onset_beats, first = np.unique(score["onset_beats"], return_index=True)
    score_seconds = score["start_s"][first]
    ends = score["onset_beats"] + np.maximum(score["duration_beats"], 0)
    grid = np.arange(np.floor(onset_beats[0]), np.ceil(max(ends.max(), onset_beats[-1] + 1)) + 1)
    grid_score_s = extrapolated_map(grid, onset_beats, score_seconds)
    # anchors: the median onset of the notes played as written at each score onset, kept while increasing
    anchor_beats, anchor_times = np.zeros(0), np.zeros(0)
    if len(paired.correct):
        beats_of = score["onset_beats"][paired.correct[:, 0]]
        times_of = played["start_s"][paired.correct[:, 1]]
        keys, inverse = np.unique(beats_of, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        groups = np.split(times_of[order], np.flatnonzero(np.diff(inverse[order])) + 1)
        medians = np.array([float(np.median(group)) if len(group) > 1 else float(group[0]) for group in groups])
        keep, last = [], -np.inf
        for k, t in enumerate(medians):
            if t > last + 1e-3:
                keep.append(k)
                last = t
        anchor_beats, anchor_times = keys[keep], medians[keep]
    if len(anchor_beats) >= 2:
        times = extrapolated_map(grid, anchor_beats, anchor_times)
        first_beat = int(np.searchsorted(grid, anchor_beats[0], side="right") - 1)
        last_beat = int(np.searchsorted(grid, anchor_beats[-1], side="left"))
    else:  # too few notes played as written: the alignment's time map
        times = extrapolated_map(grid_score_s, paired.map_score, paired.map_performance)
        anchor_beats, anchor_times = grid, times
        first_beat, last_beat = 0, len(grid) - 1
    times = np.maximum.accumulate(times + 1e-6 * np.arange(len(times)))
    smooth = np.empty_like(times)
    for k, b in enumerate(grid):
        lo, hi = np.searchsorted(anchor_beats, [b - LOCAL_BEATS, b + LOCAL_BEATS + 1e-9])
        x, y = anchor_beats[lo:hi], anchor_times[lo:hi]
        smooth[k] = np.polyval(np.polyfit(x, y, 1), b) if len(x) >= 2 and np.ptp(x) > 0 else times[k]
    smooth = np.maximum.accumulate(smooth + 1e-6 * np.arange(len(smooth)))
    step = np.diff(times)
    tempo = 60.0 / np.maximum(step, 1e-3)
    marking = 60.0 / np.maximum(np.diff(grid_score_s), 1e-3)
    bins = np.searchsorted(times, played["start_s"], side="right") - 1
    velocity = []
    for k in range(len(grid) - 1):
        inside = played["velocity"][bins == k]
        velocity.append(round(float(inside.mean()), 1) if len(inside) else None)
    inside = np.zeros(len(step), bool)
    inside[first_beat:max(first_beat, last_beat)] = True
    return {"beats": grid, "times": times, "score_s": grid_score_s, "tempo": tempo, "marking": marking,
            "velocity": velocity,
            "inside": inside, "first": first_beat, "last": last_beat,
            "expected": lambda beat: extrapolated_map(beat, grid, smooth)}


def _measure_starts(score) -> list[tuple[int, float]]:
    """(number, start beat) of each measure in score order: the score's measures, or for a score without them
    (MIDI) the first onset of each bar number."""
    if score.part is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = [(int(m.number) if m.number is not None else k + 1, float(score.part.beat_map(m.start.t)))
                   for k, m in enumerate(score.part.measures)]
        if out:
            return sorted(out, key=lambda item: item[1])
    numbers, first = np.unique(score.notes["measure"], return_index=True)
    return sorted(((int(n), float(score.notes["onset_beats"][f])) for n, f in zip(numbers, first)),
                  key=lambda item: item[1])


def _measures(measures: list[tuple[int, float]], rows: list[dict], where: list[int], beats: dict) -> list[dict]:
    """Per measure (``where``: each row's measure index): its time, notes by status, tempo, timing, loudness."""
    grid = beats["beats"]
    starts = np.array([start for _, start in measures] + [max(grid[-1], measures[-1][1])])
    at = extrapolated_map(starts, grid, beats["times"])
    score_s = extrapolated_map(starts, grid, beats["score_s"])
    inside: list[list[dict]] = [[] for _ in measures]
    for row, k in zip(rows, where):
        inside[k].append(row)
    out = []
    for k, (number, start_beat) in enumerate(measures):
        length, seconds, written = starts[k + 1] - start_beat, at[k + 1] - at[k], score_s[k + 1] - score_s[k]
        mine = inside[k]
        out.append({
            "number": number, "start": round(float(at[k]), 3), "end": round(float(at[k + 1]), 3),
            "score_beats": round(float(start_beat), 3), "beats": round(float(length), 3),
            "notes": sum(row["status"] != "extra" for row in mine),
            **{status: sum(row["status"] == status for row in mine) for status in STATUSES},
            "tempo_bpm": round(float(60.0 * length / seconds), 1) if seconds > 0 and length > 0 else None,
            "marking_bpm": round(float(60.0 * length / written), 1) if length > 0 and written > 0 else None,
            "timing_ms": _mean_abs([row.get("deviation_ms") for row in mine]),
            "mean_deviation_ms": _mean([row.get("deviation_ms") for row in mine]),
            "velocity": _mean([row.get("velocity") for row in mine]),
        })
    return out


def _pedal(controls: np.ndarray, duration: float) -> list[tuple[float, float]]:
    """Sustain pedal (CC64) down intervals (:func:`maestro_cli.metrics.transcription.pedal_intervals`)."""
    from maestro_cli.metrics.transcription import pedal_intervals

    rows = np.asarray(controls, float).reshape(-1, 3)
    rows = rows[rows[:, 1] == 64]
    return [(a, b) for a, b in pedal_intervals(rows[:, 0], rows[:, 2], duration).tolist()]


def _tempo_marked(score) -> bool:
    """The score gives a tempo (a MIDI score always does; MusicXML, MEI and kern when they mark one)."""
    if score.part is None:
        return True
    from maestro_cli.symbolic.scores import import_partitura

    return any(True for _ in score.part.iter_all(import_partitura().score.Tempo))


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 1) if values else None


def _mean_abs(values: list) -> float | None:
    return _mean([abs(v) for v in values if v is not None])


def _rounded(values: np.ndarray, digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]
