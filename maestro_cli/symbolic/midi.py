"""MIDI I/O: the one reader (symusic, all tracks merged, seconds through the tempo map) and the one writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maestro_cli.errors import MaestroError
from maestro_cli.symbolic.notes import NOTE_DTYPE, make_notes, sort_notes
from maestro_cli.symbolic.pedal import apply_sustain

_TPQ = 500  # with 120 bpm one tick is 1 ms, one time step 10 ticks


def file_head(path: Path | str, size: int) -> bytes:
    """The first ``size`` bytes of a file, to tell its format by content; one-line errors if missing or empty."""
    path = Path(path)
    try:
        if not path.is_file():
            raise MaestroError("is a folder, not a file" if path.is_dir() else "no such file", path)
        with path.open("rb") as handle:
            head = handle.read(size)
    except OSError as exc:  # unreadable, a name too long
        raise MaestroError((exc.strerror or type(exc).__name__).lower(), path) from None
    if not head:
        raise MaestroError("empty file (0 bytes)", path)
    return head


def unreadable_midi(exc: Exception, path: Path | str | None) -> MaestroError:
    """The one-line error for a file symusic could not parse: missing, empty, or what symusic says."""
    if path is not None:
        try:
            size = Path(path).stat().st_size
        except OSError:
            return MaestroError("no such file", path)
        if size == 0:
            return MaestroError("empty file (0 bytes)", path)
        try:
            if not is_midi(file_head(path, 12)):
                return MaestroError("not a MIDI file (it does not start with MThd)", path)
        except MaestroError as problem:
            return problem
    return MaestroError(f"not a readable MIDI file ({exc})", path)


def is_midi(head: bytes) -> bool:
    """Whether a file's first bytes are a Standard MIDI file (``MThd``, or RIFF-wrapped RMID)."""
    return head.startswith(b"MThd") or (head.startswith(b"RIFF") and head[8:12] == b"RMID")


def read_midi(path: Path | str | bytes) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Notes of all tracks merged, and CC64 ``(times, values)`` of all tracks, parsed with symusic.

    Ticks are converted to seconds here, in float64, through the file's tempo map.
    """
    import symusic

    try:
        score = symusic.Score.from_midi(path) if isinstance(path, bytes) else symusic.Score(str(path))
    except Exception as exc:  # symusic raises RuntimeError/ValueError with C++ messages
        raise unreadable_midi(exc, None if isinstance(path, bytes) else path) from None
    seconds = tick_clock(score.tempos.numpy(), score.tpq)
    parts, times, values = [], [], []
    for track in score.tracks:
        if track.is_drum:
            continue
        arrays = track.notes.numpy()
        start = arrays["time"].astype(np.int64)
        parts.append(make_notes(arrays["pitch"].astype(np.int64) & 127, seconds(start),
                                seconds(start + arrays["duration"]), arrays["velocity"]))
        controls = track.controls.numpy()
        pedal = controls["number"] == 64
        times.append(seconds(controls["time"][pedal]))
        values.append(controls["value"][pedal])
    notes = np.concatenate(parts) if parts else np.zeros(0, NOTE_DTYPE)
    notes = notes[notes["velocity"] > 0]
    pedals = (np.concatenate(times) if times else np.zeros(0),
              np.concatenate(values) if values else np.zeros(0, np.uint8))
    return notes, pedals


def tick_clock(tempos: dict[str, np.ndarray], tpq: int):
    """A function mapping tick arrays to seconds (float64) for a tempo map (120 bpm before the first tempo)."""
    ticks = np.concatenate([[0], tempos["time"].astype(np.int64)])
    seconds_per_tick = np.concatenate([[0.5], tempos["mspq"].astype(np.float64) / 1e6]) / max(int(tpq), 1)
    order = np.argsort(ticks, kind="stable")
    ticks, seconds_per_tick = ticks[order], seconds_per_tick[order]
    origin = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * seconds_per_tick[:-1])])

    def seconds(tick: np.ndarray) -> np.ndarray:
        tick = np.asarray(tick, dtype=np.int64)
        segment = np.searchsorted(ticks, tick, side="right") - 1
        return origin[segment] + (tick - ticks[segment]) * seconds_per_tick[segment]

    return seconds


def midi_notes(path: Path | str | bytes) -> np.ndarray:
    """The notes of a MIDI file after the sustain pedal is applied (what the tokens encode)."""
    notes, pedals = read_midi(path)
    return apply_sustain(notes, pedals)


def read_midi_notes(path: str | Path, sustain: bool = True) -> np.ndarray:
    """Notes of a MIDI file (all tracks), with the sustain pedal applied unless ``sustain`` is False, sorted by
    onset then pitch.

    The pedal rule is :func:`maestro_cli.symbolic.pedal.apply_sustain` (Magenta's, shared with the tokenizer).
    """
    notes, pedal = read_midi(Path(path))
    return sort_notes(apply_sustain(notes, pedal) if sustain else notes)


def notes_to_score(notes: np.ndarray):
    """A one-track piano ``symusic.Score`` (program 0, 120 bpm, 1 ms ticks) holding ``notes``."""
    import symusic

    ticks_per_second = _TPQ * 2  # 120 bpm: two quarters per second
    start = np.floor(notes["start_s"] * ticks_per_second + 0.5).astype(np.int64)
    end = np.maximum(np.floor(notes["end_s"] * ticks_per_second + 0.5).astype(np.int64), start + 1)
    score = symusic.Score(_TPQ)
    score.tempos.append(symusic.Tempo(0, 120.0))
    track = symusic.Track(name="Piano", program=0, is_drum=False)
    track.notes = symusic.Note.from_numpy(time=start.astype(np.int32), duration=(end - start).astype(np.int32),
                                          pitch=notes["pitch"].astype(np.int8),
                                          velocity=np.clip(notes["velocity"], 1, 127).astype(np.int8))
    score.tracks.append(track)
    return score


def write_midi(notes: np.ndarray, path: str | Path, controls=None) -> None:
    """Write :data:`~maestro_cli.symbolic.notes.NOTE_DTYPE` notes as a one-track piano MIDI file (program 0,
    120 bpm, 960 ticks per quarter), in onset then pitch order; velocities are clipped to 1..127.

    ``controls``, rows ``(time_s, controller, value)`` (e.g. CC64 sustain, CC67 soft pedal), are written as
    control changes in time order (rows at equal times keep their order).
    """
    import symusic

    score = symusic.Score(960, ttype="second")
    track = symusic.Track(name="Piano", program=0, is_drum=False, ttype="second")
    for note in sort_notes(notes):
        duration = max(note["end_s"] - note["start_s"], 1e-3)
        track.notes.append(symusic.Note(float(note["start_s"]), float(duration), int(note["pitch"]),
                                        int(np.clip(note["velocity"], 1, 127)), ttype="second"))
    for time, number, value in sorted(np.asarray(controls if controls is not None else [], dtype=np.float64)
                                      .reshape(-1, 3).tolist(), key=lambda row: row[0]):
        track.controls.append(symusic.ControlChange(max(time, 0.0), int(number), int(value), ttype="second"))
    score.tracks.append(track)
    score.dump_midi(str(path))


def read_controls(path: Path | str) -> np.ndarray:
    """All control changes of a MIDI file (every track), rows ``(time_s, controller, value)`` in time order."""
    import symusic

    try:
        score = symusic.Score(str(path))
    except Exception as exc:  # symusic raises RuntimeError/ValueError with C++ messages
        raise unreadable_midi(exc, path) from None
    seconds = tick_clock(score.tempos.numpy(), score.tpq)
    rows = [np.stack([seconds(c["time"]), c["number"], c["value"]], axis=1)
            for c in (track.controls.numpy() for track in score.tracks if not track.is_drum) if len(c["time"])]
    rows = np.concatenate(rows).astype(np.float64) if rows else np.zeros((0, 3))
    return rows[np.argsort(rows[:, 0], kind="stable")]
