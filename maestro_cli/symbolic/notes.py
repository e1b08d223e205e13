"""The note type: a structured array of :data:`NOTE_DTYPE`, and the CSV/TSV note table (MIDI files, and a reader
choosing between the two by suffix: :mod:`maestro_cli.symbolic.midi`).

Fields ``pitch`` (MIDI), ``start_s``, ``end_s`` (seconds, float64) and ``velocity`` (MIDI). Readers return notes
sorted by onset then pitch (:func:`sort_notes`). All tracks of a MIDI file are read as one piano. The note table
file format keeps the columns :data:`COLUMNS`; :func:`from_rows` and :func:`to_rows` convert at such boundaries.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from maestro_cli.errors import MaestroError

NOTE_DTYPE = np.dtype([("pitch", np.uint8), ("start_s", np.float64), ("end_s", np.float64), ("velocity", np.uint8)])
#: The columns of a note table file (and of :func:`to_rows`).
COLUMNS = ("onset_s", "offset_s", "pitch", "velocity")
MIDI_SUFFIXES = (".mid", ".midi")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")


def make_notes(pitch, start_s, end_s, velocity) -> np.ndarray:
    """Notes from four equally long sequences, in the order given."""
    notes = np.empty(len(pitch), dtype=NOTE_DTYPE)
    notes["pitch"], notes["start_s"], notes["end_s"], notes["velocity"] = pitch, start_s, end_s, velocity
    return notes


def sort_notes(notes: np.ndarray) -> np.ndarray:
    """The notes sorted by onset, then pitch (stable: equal notes keep their order)."""
    return notes[np.lexsort((notes["pitch"], notes["start_s"]))]


def from_rows(rows) -> np.ndarray:
    """Notes from rows ``onset_s, offset_s, pitch, velocity`` (:data:`COLUMNS`); pitch and velocity are rounded."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    return make_notes(np.rint(rows[:, 2]), rows[:, 0], rows[:, 1], np.rint(rows[:, 3]))


def to_rows(notes: np.ndarray) -> np.ndarray:
    """float64 rows ``onset_s, offset_s, pitch, velocity`` (:data:`COLUMNS`), in the notes' order."""
    return np.stack([notes["start_s"], notes["end_s"], notes["pitch"], notes["velocity"]], axis=1).astype(np.float64)


def read_note_table(path: str | Path) -> np.ndarray:
    """Notes from a CSV or TSV file ``onset, offset, pitch[, velocity]`` (header line optional).

    The delimiter (tab, comma or whitespace) is detected; a missing velocity column reads as 100; pitch and
    velocity are rounded to whole numbers. Sorted by onset then pitch.
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
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    table = table[np.lexsort((table[:, 2], table[:, 0]))]
    bad = np.flatnonzero((table[:, 1] < table[:, 0]) | (table[:, 2] < 0) | (table[:, 2] > 127))
    if len(bad):
        raise MaestroError(f"note {bad[0] + 1}: offset before onset or pitch outside 0-127", path)
    bad = np.flatnonzero((table[:, 3] < 0) | (table[:, 3] > 127))
    if len(bad):
        raise MaestroError(f"note {bad[0] + 1}: velocity outside 0-127", path)
    return from_rows(table)


def write_notes_csv(notes: np.ndarray, path: str | Path) -> None:
    """Write ``onset_s,offset_s,pitch,velocity`` with a header line (times in seconds, 6 decimals)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for note in sort_notes(notes):
            writer.writerow([f"{note['start_s']:.6f}", f"{note['end_s']:.6f}", int(note["pitch"]),
                             int(note["velocity"])])


