"""MIDI I/O: the one reader (:func:`read_midi`: symusic, all tracks merged, seconds through the tempo map) and the
one writer (:func:`midi_score`, :func:`midi_bytes`, :func:`write_midi`: one piano track on a 1 ms grid)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maestro_cli.errors import MaestroError, os_reason
from maestro_cli.symbolic.notes import (
    MIDI_SUFFIXES,
    NOTE_DTYPE,
    TABLE_SUFFIXES,
    make_notes,
    read_note_table,
    sort_notes,
)
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
        raise MaestroError(os_reason(exc), path) from None
    if not head:
        raise MaestroError("empty file (0 bytes)", path)
    return head


def unreadable_midi(exc: Exception, path: Path | None) -> MaestroError:
    """The one-line error for a file symusic could not parse: not a MIDI file at all, or what symusic says."""
    if path is not None:
        try:
            if not is_midi(file_head(path, 12)):
                return MaestroError("not a MIDI file (it does not start with MThd)", path)
        except MaestroError as problem:
            return problem
    return MaestroError(f"not a readable MIDI file ({exc})", path)


def is_midi(head: bytes) -> bool:
    """Whether a file's first bytes are a Standard MIDI file (``MThd``, or RIFF-wrapped RMID)."""
    return head.startswith(b"MThd") or (head.startswith(b"RIFF") and head[8:12] == b"RMID")


@dataclass
class Midi:
    """A MIDI file's piano content (all non-drum tracks as one piano), times in seconds (float64)."""

    path: Path | None
    notes: np.ndarray  #: NOTE_DTYPE as played (key releases, no pedal applied), sorted by onset then pitch
    controls: np.ndarray  #: rows ``(time_s, controller, value)`` in time order (CC64 sustain, CC67 soft, ...)

    def pedal(self, number: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """The ``(times, values)`` of one controller (the sustain pedal by default)."""
        rows = self.controls[self.controls[:, 1] == number]
        return rows[:, 0], rows[:, 2].astype(np.uint8)

    def sounding(self) -> np.ndarray:
        """The notes as heard: the sustain pedal applied (Magenta's rule, shared with the tokenizer)."""
        return sort_notes(apply_sustain(self.notes, self.pedal()))

    def piano_notes(self, sustain: bool = False) -> np.ndarray:
        """The notes on the 88 keys (as played, or sounding with ``sustain``); a one-line error if there are none."""
        notes = self.sounding() if sustain else self.notes
        notes = notes[(notes["pitch"] >= 21) & (notes["pitch"] <= 108)]
        if len(notes) == 0:
            raise MaestroError("MIDI file holds no notes", self.path)
        return notes


def parse_midi(source: Path | str | bytes, ttype: str = "tick"):
    """A MIDI file (path or bytes) parsed by symusic (the only place it is), with one-line errors."""
    import symusic

    path = None if isinstance(source, bytes) else Path(source)
    if path is not None:
        file_head(path, 1)  # missing, empty or a folder: said plainly
    try:
        if path is None:
            return symusic.Score.from_midi(source, ttype=ttype)
        return symusic.Score(str(path), ttype=ttype)
    except Exception as exc:  # symusic raises RuntimeError/ValueError with C++ messages
        raise unreadable_midi(exc, path) from None


def read_midi(source: Path | str | bytes) -> Midi:
    """The one MIDI reader: notes and control changes of all non-drum tracks, seconds through the tempo map."""
    score = parse_midi(source)
    seconds = tick_clock(score.tempos.numpy(), score.tpq)
    parts, controls = [], []
    for track in score.tracks:
        if track.is_drum:
            continue
        arrays = track.notes.numpy()
        start = arrays["time"].astype(np.int64)
        parts.append(make_notes(arrays["pitch"].astype(np.int64) & 127, seconds(start),
                                seconds(start + arrays["duration"]), arrays["velocity"]))
        rows = track.controls.numpy()
        if len(rows["time"]):
            controls.append(np.stack([seconds(rows["time"]), rows["number"], rows["value"]], axis=1))
    notes = np.concatenate(parts) if parts else np.zeros(0, NOTE_DTYPE)
    controls = np.concatenate(controls).astype(np.float64) if controls else np.zeros((0, 3))
    return Midi(None if isinstance(source, bytes) else Path(source), sort_notes(notes[notes["velocity"] > 0]),
                controls[np.argsort(controls[:, 0], kind="stable")])


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


def midi_score(notes: np.ndarray, controls=None, program: int = 0, pitch_bend: int = 0):
    """The one MIDI writer: a one-track ``symusic.Score`` (120 bpm, 1 ms ticks) holding ``notes`` in onset then
    pitch order (velocities clipped to 1..127, at least one tick long), the ``controls`` rows ``(time_s, controller,
    value)`` in time order (equal times keep their order), ``program`` and an initial ``pitch_bend`` (-8192..8191).
    """
    import symusic

    ticks_per_second = _TPQ * 2  # 120 bpm: two quarters per second
    notes = sort_notes(notes)
    start = np.maximum(np.floor(notes["start_s"] * ticks_per_second + 0.5), 0).astype(np.int64)
    end = np.maximum(np.floor(notes["end_s"] * ticks_per_second + 0.5).astype(np.int64), start + 1)
    score = symusic.Score(_TPQ)
    score.tempos.append(symusic.Tempo(0, 120.0))
    track = symusic.Track(name="Piano", program=program, is_drum=False)
    if pitch_bend:
        track.pitch_bends.append(symusic.PitchBend(0, int(pitch_bend)))
    track.notes = symusic.Note.from_numpy(time=start.astype(np.int32), duration=(end - start).astype(np.int32),
                                          pitch=notes["pitch"].astype(np.int8),
                                          velocity=np.clip(notes["velocity"], 1, 127).astype(np.int8))
    rows = np.asarray(controls if controls is not None else [], dtype=np.float64).reshape(-1, 3)
    for time, number, value in rows[np.argsort(rows[:, 0], kind="stable")].tolist():
        track.controls.append(symusic.ControlChange(max(int(np.floor(time * ticks_per_second + 0.5)), 0),
                                                    int(number), int(value)))
    score.tracks.append(track)
    return score


def midi_bytes(notes: np.ndarray, controls=None, program: int = 0, pitch_bend: int = 0) -> bytes:
    """:func:`midi_score` as the bytes of a Standard MIDI file."""
    return bytes(midi_score(notes, controls, program, pitch_bend).dumps_midi())


def write_midi(notes: np.ndarray, path: str | Path, controls=None) -> None:
    """Write notes (and control-change rows ``(time_s, controller, value)``) as a one-track piano MIDI file."""
    Path(path).write_bytes(midi_bytes(notes, controls))


def read_notes(path: str | Path, sustain: bool = True) -> np.ndarray:
    """Notes of a MIDI file (sustain applied unless ``sustain`` is False) or of a CSV/TSV note table, chosen by the
    file suffix, sorted by onset then pitch."""
    path = Path(path)
    if not path.is_file():
        raise MaestroError("no such file", path)
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        midi = read_midi(path)
        return midi.sounding() if sustain else midi.notes
    if suffix in TABLE_SUFFIXES:
        return read_note_table(path)
    raise MaestroError(f"unknown note file type '{suffix}' (expected .mid, .midi, .csv, .tsv)", path)
