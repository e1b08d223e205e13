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

NOTE_DTYPE = np.dtype([("pitch", np.uint8), ("start_s", np.float64), ("end_s", np.float64), ("velocity", np.uint8)])


COLUMNS = ("onset_s", "offset_s", "pitch", "velocity")
MIDI_SUFFIXES = (".mid", ".midi")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")


def make_notes(pitch, start_s, end_s, velocity) -> np.ndarray:
    """A note array from four equally long sequences."""
    notes = np.empty(len(pitch), dtype=NOTE_DTYPE)
    notes["pitch"], notes["start_s"], notes["end_s"], notes["velocity"] = pitch, start_s, end_s, velocity
    return notes


def empty() -> np.ndarray:
    """A note list with no notes."""
    return np.zeros((0, 4))


def sort_notes(notes: np.ndarray) -> np.ndarray:
    """The note list as float64 ``(n, 4)``, sorted by onset then pitch."""
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    return notes[np.lexsort((notes[:, 2], notes[:, 0]))]


def from_structured(notes: np.ndarray) -> np.ndarray:
    """Convert a :data:`maestro_cli.tokens.performance.NOTE_DTYPE` array to a note list."""
    return sort_notes(np.stack([notes["start_s"], notes["end_s"], notes["pitch"], notes["velocity"]], axis=1)
                   .astype(np.float64))


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
    notes = sort_notes(np.array(rows)) if rows else empty()
    bad = np.flatnonzero((notes[:, 1] < notes[:, 0]) | (notes[:, 2] < 0) | (notes[:, 2] > 127))
    if len(bad):
        raise MaestroError(f"note {bad[0] + 1}: offset before onset or pitch outside 0-127", path)
    return notes


def read_notes(path: str | Path, sustain: bool = True) -> np.ndarray:
    """Notes of a MIDI file (sustain applied) or of a CSV/TSV note table, chosen by the file suffix."""
    from maestro_cli.symbolic.midi import read_midi_notes

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
        for onset, offset, pitch, velocity in sort_notes(notes):
            writer.writerow([f"{onset:.6f}", f"{offset:.6f}", int(pitch), int(velocity)])


