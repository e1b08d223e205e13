"""The dataset API on the real MAESTRO folder and on small generated metadata."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from maestro_cli.data.maestro import default_root, open_dataset, read_metadata
from maestro_cli.errors import MaestroError, UsageError


def test_v3_is_preferred_and_split_counts(maestro_root: Path) -> None:
    ds = open_dataset(maestro_root)
    assert ds.version == "v3.0.0"
    assert ds.counts_by_split() == {"train": 962, "validation": 137, "test": 177}
    hours = ds.hours_by_split()
    assert 150 < hours["train"] < 170 and 15 < hours["test"] < 25  # MAESTRO v3: 159.2 / 19.4 / 20.0 h


def test_explicit_version_v2(maestro_root: Path) -> None:
    ds = open_dataset(maestro_root, version="v2")
    assert ds.version == "v2.0.0"
    assert len(ds) == 1282
    assert ds.counts_by_split() == {"train": 967, "validation": 137, "test": 178}
    with pytest.raises(MaestroError, match="no metadata for MAESTRO v1"):
        open_dataset(maestro_root, version="v1")


def test_records_paths_and_midi_only(maestro_root: Path) -> None:
    ds = open_dataset(maestro_root)
    first = ds.records[0]
    assert first.midi_path.is_file()
    assert first.midi_path.parent.parent == maestro_root
    assert all(record.audio_path is None for record in ds)  # MIDI-only folder
    assert ds.validate() == []


def test_relative_root_gives_absolute_paths(maestro_root: Path, monkeypatch) -> None:
    monkeypatch.chdir(maestro_root.parent)
    ds = open_dataset(maestro_root.name)
    assert ds.root == maestro_root and ds.records[0].midi_path.is_absolute()


def test_csv_json_v3_and_v2_agree(maestro_root: Path) -> None:
    for version in ("v2.0.0", "v3.0.0"):
        from_csv = read_metadata(maestro_root / f"maestro-{version}.csv")
        from_json = read_metadata(maestro_root / f"maestro-{version}.json")
        assert len(from_csv) == len(from_json)
        assert [row["midi_filename"] for row in from_csv] == [row["midi_filename"] for row in from_json]
        assert [float(row["duration"]) for row in from_csv] == [float(row["duration"]) for row in from_json]


def test_filters(maestro_root: Path) -> None:
    ds = open_dataset(maestro_root)
    chopin = ds.filter(composer="chopin")
    assert len(chopin) > 0
    assert {record.composer for record in chopin} >= {"Frédéric Chopin"}
    assert all("chopin" in record.composer.lower() for record in chopin)
    assert len(ds.filter(composer="FREDERIC")) == len(ds.filter(composer="Frédéric"))
    test_2004 = ds.filter(split="test", year=2004)
    assert len(test_2004) > 0 and all(r.split == "test" and r.year == 2004 for r in test_2004)
    assert len(ds.filter(composer="chopin", split="test")) == sum(
        1 for r in ds if r.split == "test" and "Chopin" in r.composer)
    with pytest.raises(UsageError, match="unknown split"):
        ds.filter(split="dev")


def _write_release(root: Path, rows: list[dict], layout: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if layout == "csv":
        with (root / "maestro-v1.0.0.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif layout == "list":
        (root / "maestro-v1.0.0.json").write_text(json.dumps(rows))
    else:
        columns = {name: {str(i): row[name] for i, row in enumerate(rows)} for name in rows[0]}
        (root / "maestro-v3.0.0.json").write_text(json.dumps(columns))


@pytest.mark.parametrize("layout", ["csv", "list", "columns"])
def test_formats_audio_and_validate(tmp_path: Path, layout: str) -> None:
    rows = [
        {"canonical_composer": "Frédéric Chopin", "canonical_title": "Ballade", "split": "train", "year": 2009,
         "midi_filename": "2009/a.midi", "audio_filename": "2009/a.wav", "duration": 60.0},
        {"canonical_composer": "Franz Liszt", "canonical_title": "Sonata", "split": "test", "year": 2011,
         "midi_filename": "2011/b.midi", "audio_filename": "2011/b.wav", "duration": 120.5},
        {"canonical_composer": "Franz Liszt", "canonical_title": "Etude", "split": "test", "year": 2011,
         "midi_filename": "2011/c.midi", "audio_filename": "2011/c.wav", "duration": 30.0},
    ]
    root = tmp_path / "release"
    _write_release(root, rows, layout)
    (root / "2009").mkdir()
    (root / "2009/a.midi").write_bytes(b"MThd\x00\x00\x00\x06")
    (root / "2009/a.wav").write_bytes(b"RIFF")
    (root / "2011").mkdir()
    (root / "2011/b.midi").write_bytes(b"garbage")
    ds = open_dataset(root)
    assert [r.year for r in ds] == [2009, 2011, 2011]
    assert ds.records[0].audio_path == root / "2009/a.wav"
    assert ds.records[1].audio_path is None
    assert ds.records[1].duration == pytest.approx(120.5)
    problems = {p.path.name: p.message for p in ds.validate()}
    assert problems == {"b.midi": "not a MIDI file (no MThd header)", "c.midi": "MIDI file is missing"}


def test_parent_folder_with_fetched_releases(tmp_path: Path) -> None:
    row = {"canonical_composer": "Joseph Haydn", "canonical_title": "Sonata", "split": "train", "year": 2004,
           "midi_filename": "2004/x.midi", "audio_filename": "2004/x.wav", "duration": 1.0}
    _write_release(tmp_path / "maestro-v1.0.0", [row], "list")
    _write_release(tmp_path / "maestro-v3.0.0", [row, row], "columns")
    assert open_dataset(tmp_path).version == "v3.0.0"
    assert open_dataset(tmp_path).root == tmp_path / "maestro-v3.0.0"
    assert len(open_dataset(tmp_path, version="1")) == 1


def test_no_metadata_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MaestroError, match="no MAESTRO metadata"):
        open_dataset(tmp_path)
    with pytest.raises(MaestroError, match="not found"):
        open_dataset(tmp_path / "absent")


def test_default_root_follows_maestro_home(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path))
    assert default_root() == tmp_path
    monkeypatch.delenv("MAESTRO_HOME")
    assert default_root().name == "maestro"
