"""Note lists for transcription: read from MIDI (sustain pedal applied) or a CSV/TSV table, write CSV or MIDI.

A note list is a float64 array of shape ``(n, 4)`` with columns ``onset_s, offset_s, pitch, velocity``
(:data:`COLUMNS`), sorted by onset then pitch. All tracks of a MIDI file are read as one piano.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from maestro_cli.errors import MaestroError

COLUMNS = ("onset_s", "offset_s", "pitch", "velocity")
MIDI_SUFFIXES = (".mid", ".midi")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")


def empty() -> np.ndarray:
    """A note list with no notes."""
    return np.zeros((0, 4))


def _sorted(notes: np.ndarray) -> np.ndarray:
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    return notes[np.lexsort((notes[:, 2], notes[:, 0]))]


def from_structured(notes: np.ndarray) -> np.ndarray:
    """Convert a :data:`maestro_cli.events.NOTE_DTYPE` array to a note list."""
    return _sorted(np.stack([notes["start_s"], notes["end_s"], notes["pitch"], notes["velocity"]], axis=1)
                   .astype(np.float64))


def read_midi_notes(path: str | Path, sustain: bool = True) -> np.ndarray:
    """Notes of a MIDI file (all tracks), with the sustain pedal applied unless ``sustain`` is False.

    The pedal rule is :func:`maestro_cli.events.apply_sustain` (Magenta's, shared with the tokenizer).
    """
    from maestro_cli.events import apply_sustain, read_midi

    notes, pedal = read_midi(Path(path))
    return from_structured(apply_sustain(notes, pedal) if sustain else notes)


def read_note_table(path: str | Path) -> np.ndarray:
    """Notes from a CSV or TSV file ``onset, offset, pitch[, velocity]`` (header line optional).

    The delimiter (tab, comma or whitespace) is detected; a missing velocity column reads as 100.
    """
    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise MaestroError(f"cannot read note table ({exc})", path) from None
    rows: list[list[float]] = []
    first = True
    for number, line in enumerate(lines, 1):
        if not line or line.startswith("#"):
            continue
        cells = re.split(r"[,;\s]+", line)
        try:
            values = [float(cell) for cell in cells[:4]]
        except ValueError:
            if first:  # a header line
                first = False
                continue
            raise MaestroError(f"line {number}: expected numbers onset, offset, pitch, velocity", path) from None
        first = False
        if len(values) < 3:
            raise MaestroError(f"line {number}: expected at least onset, offset, pitch", path)
        rows.append(values + [100.0] * (4 - len(values)))
    notes = _sorted(np.array(rows)) if rows else empty()
    bad = np.flatnonzero((notes[:, 1] < notes[:, 0]) | (notes[:, 2] < 0) | (notes[:, 2] > 127))
    if len(bad):
        raise MaestroError(f"note {bad[0] + 1}: offset before onset or pitch outside 0-127", path)
    return notes


def read_notes(path: str | Path, sustain: bool = True) -> np.ndarray:
    """Notes of a MIDI file (sustain applied) or of a CSV/TSV note table, chosen by the file suffix."""
    path = Path(path)
    if not path.is_file():
        raise MaestroError("no such file", path)
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        return read_midi_notes(path, sustain)
    if suffix in TABLE_SUFFIXES:
        return read_note_table(path)
    raise MaestroError(f"unknown note file type '{suffix}' (expected .mid, .midi, .csv, .tsv)", path)


def write_notes_csv(notes: np.ndarray, path: str | Path) -> None:
    """Write ``onset_s,offset_s,pitch,velocity`` with a header line (times in seconds, 6 decimals)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for onset, offset, pitch, velocity in _sorted(notes):
            writer.writerow([f"{onset:.6f}", f"{offset:.6f}", int(pitch), int(velocity)])


def write_midi(notes: np.ndarray, path: str | Path, controls=None) -> None:
    """Write the notes as a one-track piano MIDI file (program 0, 120 bpm, 960 ticks per quarter).

    ``controls``, rows ``(time_s, controller, value)`` (e.g. CC64 sustain, CC67 soft pedal), are written as
    control changes in time order (rows at equal times keep their order).
    """
    import symusic

    score = symusic.Score(960, ttype="second")
    track = symusic.Track(name="Piano", program=0, is_drum=False, ttype="second")
    for onset, offset, pitch, velocity in _sorted(notes):
        duration = max(offset - onset, 1e-3)
        track.notes.append(symusic.Note(float(onset), float(duration), int(pitch),
                                        int(np.clip(round(velocity), 1, 127)), ttype="second"))
    for time, number, value in sorted(np.asarray(controls if controls is not None else [], dtype=np.float64)
                                      .reshape(-1, 3).tolist(), key=lambda row: row[0]):
        track.controls.append(symusic.ControlChange(max(time, 0.0), int(number), int(value), ttype="second"))
    score.tracks.append(track)
    score.dump_midi(str(path))
