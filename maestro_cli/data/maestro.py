"""The MAESTRO dataset API: open a root folder, read its metadata, filter and validate records.

>>> from maestro_cli.data.maestro import open_dataset
>>> ds = open_dataset("/data/maestro-v3.0.0")                 # doctest: +SKIP
>>> [r.midi_path for r in ds.filter(composer="chopin", split="test")]   # doctest: +SKIP

A root is a folder holding ``maestro-vX.Y.Z.json`` and/or ``maestro-vX.Y.Z.csv`` beside the year folders
(the layout of the official zips), or a folder whose ``maestro-v*`` subfolders hold such releases (the
layout ``maestro fetch`` creates under ``$MAESTRO_HOME``). The highest version found is used unless
``version`` names another one. v1/v2 JSON is a list of records, v3 JSON is column-oriented
(``{"column": {"0": value, ...}}``); the CSV has the same columns in every version.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from maestro_cli.data.composers import matches
from maestro_cli.errors import MaestroError, UsageError

SPLITS: tuple[str, ...] = ("train", "validation", "test")
COLUMNS: tuple[str, ...] = ("canonical_composer", "canonical_title", "split", "year", "midi_filename",
                            "audio_filename", "duration")
_METADATA = re.compile(r"^maestro-v(\d+)\.(\d+)\.(\d+)\.(json|csv)$")
_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


@dataclass(frozen=True)
class Record:
    """One performance: metadata plus the paths of its files (``audio_path`` is None when absent)."""

    composer: str
    title: str
    split: str
    year: int
    midi_path: Path
    audio_path: Path | None
    duration: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings)."""
        return {"composer": self.composer, "title": self.title, "split": self.split, "year": self.year,
                "midi_path": str(self.midi_path),
                "audio_path": None if self.audio_path is None else str(self.audio_path),
                "duration": self.duration}


@dataclass(frozen=True)
class Problem:
    """A file named by the metadata that is missing or unreadable."""

    path: Path
    message: str


@dataclass
class MaestroDataset:
    """The records of one MAESTRO release (or a filtered selection of them)."""

    root: Path
    version: str
    metadata_path: Path
    records: list[Record] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def filter(self, composer: str | None = None, split: str | None = None,
               year: int | None = None) -> "MaestroDataset":
        """The records matching every given criterion (composer: case/accent-insensitive substring)."""
        if split is not None and split not in SPLITS:
            raise UsageError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")
        chosen = [record for record in self.records
                  if (composer is None or matches(composer, record.composer))
                  and (split is None or record.split == split)
                  and (year is None or record.year == int(year))]
        return MaestroDataset(self.root, self.version, self.metadata_path, chosen)

    def validate(self) -> list[Problem]:
        """Missing or unreadable MIDI files, and audio files that exist but cannot be read."""
        problems: list[Problem] = []
        for record in self.records:
            problem = _check_midi(record.midi_path)
            if problem:
                problems.append(Problem(record.midi_path, problem))
            if record.audio_path is not None and not os.access(record.audio_path, os.R_OK):
                problems.append(Problem(record.audio_path, "audio file is not readable"))
        return problems

    def hours_by_split(self) -> dict[str, float]:
        """Total duration in hours per split (splits in train/validation/test order)."""
        hours = {split: 0.0 for split in SPLITS}
        for record in self.records:
            hours[record.split] = hours.get(record.split, 0.0) + record.duration / 3600
        return hours

    def counts_by_split(self) -> dict[str, int]:
        """Number of records per split (splits in train/validation/test order)."""
        counts = {split: 0 for split in SPLITS}
        counts.update(Counter(record.split for record in self.records))
        return counts

    def top_composers(self, n: int = 10) -> list[tuple[str, int]]:
        """The ``n`` composers with the most records, with their counts."""
        return Counter(record.composer for record in self.records).most_common(n)


def default_root() -> Path:
    """``$MAESTRO_HOME``, else the platform's user data dir (``~/.local/share/maestro`` on Linux)."""
    home = os.environ.get("MAESTRO_HOME")
    if home:
        return Path(home).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("maestro", appauthor=False))


def parse_version(text: str) -> tuple[int, int, int]:
    """``"v3"``, ``"3"``, ``"v3.0.0"`` -> ``(3, 0, 0)``."""
    match = _VERSION.match(text.strip())
    if not match:
        raise UsageError(f"bad dataset version '{text}'; expected v1, v2, v3 or vX.Y.Z")
    return tuple(int(part or 0) for part in match.groups())  # type: ignore[return-value]


def metadata_files(root: Path) -> dict[tuple[int, int, int], Path]:
    """Metadata file per version found in ``root`` or its ``maestro-v*`` subfolders (JSON preferred over CSV)."""
    found: dict[tuple[int, int, int], Path] = {}
    folders = [root] + sorted(p for p in root.glob("maestro-v*") if p.is_dir())
    for folder in folders:
        for path in sorted(folder.glob("maestro-v*.*")):
            match = _METADATA.match(path.name)
            if not match:
                continue
            key = tuple(int(part) for part in match.groups()[:3])
            previous = found.get(key)  # type: ignore[arg-type]
            if previous is None or (previous.suffix == ".csv" and path.suffix == ".json" and previous.parent == folder):
                found[key] = path  # type: ignore[index]
        if found and folder == root:
            break  # a root with its own metadata is the release; do not mix in subfolders
    return found


def open_dataset(root: Path | str | None = None, version: str | None = None) -> MaestroDataset:
    """Open the MAESTRO release in ``root`` (default :func:`default_root`), highest version unless told."""
    root = Path(os.path.abspath(Path(root).expanduser() if root is not None else default_root()))
    if not root.is_dir():
        raise MaestroError("dataset folder not found (run `maestro fetch` or pass --root)", root)
    found = metadata_files(root)
    if not found:
        raise MaestroError("no MAESTRO metadata (maestro-v*.json or maestro-v*.csv) in this folder "
                           "(run `maestro fetch` or pass --root)", root)
    if version is None:
        key = max(found)
    else:
        wanted = parse_version(version)
        candidates = [key for key in found if key[: len(_given(version))] == wanted[: len(_given(version))]]
        if not candidates:
            have = ", ".join(_name(key) for key in sorted(found))
            raise MaestroError(f"no metadata for MAESTRO {version} here (found {have})", root)
        key = max(candidates)
    path = found[key]
    rows = read_metadata(path)
    base = path.parent
    records = [_record(row, base, path) for row in rows]
    return MaestroDataset(base, _name(key), path, records)


def read_metadata(path: Path) -> list[dict[str, Any]]:
    """Rows of a metadata file: v1/v2 list-of-records JSON, v3 column-oriented JSON, or CSV."""
    try:
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as handle:
                return list(csv.DictReader(handle))
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise MaestroError(f"cannot read metadata: {exc}", path) from None
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and all(isinstance(column, dict) for column in data.values()):
        keys = sorted(next(iter(data.values()), {}), key=int)
        return [{name: column.get(key) for name, column in data.items()} for key in keys]
    raise MaestroError("metadata JSON is neither a list of records nor column-oriented", path)


def _record(row: dict[str, Any], base: Path, source: Path) -> Record:
    missing = [name for name in COLUMNS if name not in row]
    if missing:
        raise MaestroError(f"metadata lacks column(s) {', '.join(missing)}", source)
    try:
        audio = base / row["audio_filename"] if row["audio_filename"] else None
        return Record(
            composer=str(row["canonical_composer"]),
            title=str(row["canonical_title"]),
            split=str(row["split"]),
            year=int(row["year"]),
            midi_path=base / row["midi_filename"],
            audio_path=audio if audio is not None and audio.is_file() else None,
            duration=float(row["duration"]),
        )
    except (TypeError, ValueError) as exc:
        raise MaestroError(f"bad metadata row {row.get('midi_filename')!r}: {exc}", source) from None


def _check_midi(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except FileNotFoundError:
        return "MIDI file is missing"
    except OSError as exc:
        return f"MIDI file is not readable: {exc.strerror or exc}"
    return None if head == b"MThd" else "not a MIDI file (no MThd header)"


def _given(version: str) -> tuple[str, ...]:
    return tuple(part for part in _VERSION.match(version.strip()).groups() if part is not None)  # type: ignore[union-attr]


def _name(key: tuple[int, int, int]) -> str:
    return "v{}.{}.{}".format(*key)
