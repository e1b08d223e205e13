"""The performance tokenizer (maestro_cli.tokens.performance), token files, the training cache and
`maestro tokenize`."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maestro_cli.data.composers import COMPOSERS, composer_class
from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.symbolic.midi import read_midi
from maestro_cli.symbolic.notes import make_notes
from maestro_cli.symbolic.pedal import apply_sustain
from maestro_cli.tokens import files as tokenize_io
from maestro_cli.tokens import performance as E
from maestro_cli.tokens.performance import PerformanceTokenizer
from tests.helpers import run_maestro, write_midi

STEP = 1 / E.STEPS_PER_SECOND
EPS = 1e-6


def real_midis(root: Path, n: int) -> list[Path]:
    files = sorted(root.glob("*/*.mid*"))
    return files[:: max(1, len(files) // n)][:n]


# ---------------------------------------------------------------- vocabulary


def test_fixed_ids_and_vocab():
    assert (E.NOTE_ON, E.NOTE_OFF, E.TIME_SHIFT, E.VELOCITY, E.NUM_EVENTS) == (0, 128, 256, 356, 388)
    assert (E.PAD, E.START, E.END) == (388, 389, 390)
    assert E.VOCAB_SIZE == 391 + len(COMPOSERS) + 1
    vocab = E.vocab()
    assert sorted(vocab.values()) == list(range(E.VOCAB_SIZE))
    assert vocab["NOTE_ON_60"] == 60 and vocab["NOTE_OFF_60"] == 188
    assert vocab["TIME_SHIFT_1"] == 256 and vocab["TIME_SHIFT_100"] == 355 and vocab["VELOCITY_31"] == 387
    assert vocab["COMPOSER_Frédéric Chopin"] == 391 and vocab["COMPOSER_unknown"] == E.VOCAB_SIZE - 1


def test_composer_tokens():
    unknown = E.VOCAB_SIZE - 1
    assert E.composer_token("Frédéric Chopin") == E.composer_token("chopin") == 391
    bach = 391 + COMPOSERS.index("Johann Sebastian Bach")
    assert E.composer_token("Johann Sebastian Bach / Ferruccio Busoni") == bach  # filed under the composer
    assert E.composer_token("Alban Berg") == E.composer_token(None) == E.composer_token("unknown") == unknown
    with pytest.raises(UsageError, match="ambiguous"):
        E.composer_token("Franz")


def test_velocity_bins():
    velocities = np.arange(1, 128)
    bins = E.velocity_bin(velocities)
    assert bins.min() == 0 and bins.max() == 31 and np.all(np.diff(bins) >= 0)
    assert np.array_equal(E.velocity_bin(E.bin_velocity(bins)), bins)


# ---------------------------------------------------------------- sustain pedal


def magenta_sustain(notes, pedal):
    """Magenta's apply_sustain_control_changes, transcribed loop by loop, then re-strikes cut (our rule)."""
    notes = [dict(pitch=int(n["pitch"]), start=float(n["start_s"]), end=float(n["end_s"]), vel=int(n["velocity"]),
                  id=i) for i, n in enumerate(notes)]
    events = [(n["end"], 3, n) for n in notes] + [(t, 0 if v >= 64 else 1, None) for t, v in pedal]
    events += [(n["start"], 2, n) for n in notes]
    events.sort(key=lambda e: e[:2])
    active, sustain, deleted, time = [], False, set(), 0.0
    for time, kind, note in events:
        if kind == 0:
            sustain = True
        elif kind == 1:
            sustain = False
            keep = []
            for other in active:
                if other["end"] < time:
                    other["end"] = time
                else:
                    keep.append(other)
            active = keep
        elif kind == 2:
            if sustain:
                keep = []
                for other in active:
                    if other["pitch"] == note["pitch"]:
                        other["end"] = time
                        if other["start"] == other["end"]:
                            deleted.add(other["id"])
                    else:
                        keep.append(other)
                active = keep
            active.append(note)
        elif not sustain and note in active:
            active.remove(note)
    for note in active:
        note["end"] = time
    kept = [n for n in notes if n["id"] not in deleted]
    result = make_notes([n["pitch"] for n in kept], [n["start"] for n in kept], [n["end"] for n in kept],
                          [n["vel"] for n in kept])
    return apply_sustain(result, (np.zeros(0), np.zeros(0)))  # no pedal: only the re-strike cut


def test_sustain_rule_by_hand():
    notes = make_notes([60, 62, 60, 64], [0.0, 0.5, 1.0, 3.0], [0.2, 0.7, 1.1, 3.1], [80] * 4)
    pedal = (np.array([0.1, 0.9, 2.9]), np.array([127, 0, 100]))
    out = apply_sustain(notes, pedal)
    assert list(out["pitch"]) == [60, 62, 60, 64]
    # released under the pedal: last until it lifts at 0.9; the last note's pedal never lifts: ends at the last event
    assert np.allclose(out["end_s"], [0.9, 0.9, 1.1, 3.1])
    # pedal never lifted: a note released under it lasts to the last event
    out = apply_sustain(make_notes([60, 67], [0.0, 0.5], [0.3, 2.0], [80, 80]), (np.array([0.2]), np.array([127])))
    assert np.allclose(out["end_s"], [2.0, 2.0])
    # re-strike under the pedal ends the sounding note
    out = apply_sustain(make_notes([60, 60], [0.0, 0.5], [0.1, 0.6], [80, 80]),
                        (np.array([0.0, 2.0]), np.array([127, 0])))
    assert np.allclose(out["start_s"], [0.0, 0.5]) and np.allclose(out["end_s"], [0.5, 2.0])


pedal_lists = st.lists(st.tuples(st.integers(0, 400).map(lambda t: t / 100), st.sampled_from([0, 30, 64, 100, 127])),
                       max_size=12)


@st.composite
def note_arrays(draw, max_notes=40, pitches=(0, 127)):
    """Random notes: few pitches (so overlaps happen), long notes, long gaps, exact-step and off-grid times."""
    n = draw(st.integers(0, max_notes))
    pitch_pool = draw(st.lists(st.integers(*pitches), min_size=1, max_size=4))
    pitch = [draw(st.sampled_from(pitch_pool)) for _ in range(n)]
    start = [draw(st.integers(0, 400_000)) / 10_000 for _ in range(n)]  # up to 40 s, 0.1 ms grid
    length = [draw(st.one_of(st.integers(1, 300), st.integers(1, 60_000))) / 10_000 for _ in range(n)]
    velocity = [draw(st.integers(1, 127)) for _ in range(n)]
    return make_notes(pitch, start, np.add(start, length), velocity)


@settings(max_examples=150, deadline=None)
@given(note_arrays(max_notes=25), pedal_lists)
def test_sustain_matches_magenta(notes, pedal):
    times = np.array([t for t, _ in pedal], dtype=float)
    values = np.array([v for _, v in pedal], dtype=int)
    ours = apply_sustain(notes, (times, values))
    reference = magenta_sustain(notes, pedal)
    assert len(ours) == len(reference)
    for field in ("pitch", "start_s", "end_s", "velocity"):
        assert np.allclose(ours[field], reference[field]), field


# ---------------------------------------------------------------- round trips


def assert_close_to(decoded: np.ndarray, notes: np.ndarray) -> None:
    """Same notes: pitches, onsets and offsets within half a step (notes shorter than a step last one step),
    velocity in its bin."""
    assert len(decoded) == len(notes)
    order = np.lexsort((notes["pitch"], np.floor(notes["start_s"] * E.STEPS_PER_SECOND + 0.5)))
    notes = notes[order]
    assert np.array_equal(decoded["pitch"], notes["pitch"])
    assert np.abs(decoded["start_s"] - notes["start_s"]).max(initial=0) <= STEP / 2 + EPS
    end_ok = np.abs(decoded["end_s"] - notes["end_s"]) <= STEP / 2 + EPS
    shortest = np.isclose(decoded["end_s"] - decoded["start_s"], STEP) & (notes["end_s"] - notes["start_s"] < STEP)
    assert np.all(end_ok | shortest)
    assert np.array_equal(E.velocity_bin(decoded["velocity"]), E.velocity_bin(notes["velocity"]))


@settings(max_examples=120, deadline=None)
@given(note_arrays())
def test_random_notes_round_trip(notes):
    cut = apply_sustain(notes, (np.zeros(0), np.zeros(0)))  # the one-sounding-note-per-key rule
    ids = E.notes_to_events(cut)
    steps = E.events_to_steps(ids)
    quantized = E.quantize(cut)
    assert np.array_equal(steps[["pitch", "start", "end"]], quantized[["pitch", "start", "end"]])
    # two onsets of a key in one 10 ms step keep only the later note; otherwise every note survives
    onset = np.floor(cut["start_s"] * E.STEPS_PER_SECOND + 0.5)
    if len(np.unique(np.stack([cut["pitch"], onset]), axis=1).T) == len(cut):
        assert_close_to(E.events_to_notes(ids), cut)
    # canonical: re-encoding the decoded notes gives the same ids
    assert np.array_equal(E.notes_to_events(E.events_to_notes(ids)), ids)
    shifts = ids[(ids >= E.TIME_SHIFT) & (ids < E.VELOCITY)]
    assert len(shifts) == 0 or shifts.max() < E.VELOCITY


def test_long_notes_and_gaps():
    notes = make_notes([60, 60, 72], [0.0, 5.0, 5.004], [3.5, 5.5, 30.0], [1, 127, 64])
    ids = E.notes_to_events(notes)
    assert_close_to(E.events_to_notes(ids), notes)
    assert (ids == E.TIME_SHIFT + 99).sum() >= 24 + 3 + 1  # 24.5 s of one note, 3.5 s, 1.5 s


@pytest.fixture(scope="module")
def twenty(maestro_root):
    return real_midis(maestro_root, 20)


def test_real_files_round_trip(twenty):
    for path in twenty:
        notes = read_midi(path).sounding()
        raw = read_midi(path).notes
        assert len(notes) > 100 and len(notes) <= len(raw)
        ids = E.encode_midi(path, "Frédéric Chopin")
        assert ids[0] == E.START and ids[1] == 391 and ids[-1] == E.END and ids.dtype == np.uint16
        assert_close_to(E.events_to_notes(ids), notes)
        # through a MIDI file and back, the notes are exactly the quantized ones
        again = read_midi(E.decode_to_midi(ids)).sounding()
        assert_close_to(again, notes)
        assert np.array_equal(E.notes_to_events(again), ids[2:-1])


def test_pedal_lengthens_real_notes(twenty):
    raw, pedal = read_midi(twenty[0]).notes, read_midi(twenty[0]).pedal()
    sustained = apply_sustain(raw, pedal)
    assert len(pedal[0]) > 0
    assert len(sustained) <= len(raw)
    def duration(notes):
        return (notes["end_s"] - notes["start_s"]).sum()
    assert duration(sustained) > 1.2 * duration(raw)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, E.VOCAB_SIZE + 20), max_size=400))
def test_any_sequence_decodes(ids):
    notes = E.events_to_notes(ids)
    assert np.all(notes["end_s"] > notes["start_s"])
    assert np.all((notes["velocity"] >= 1) & (notes["velocity"] <= 127))
    data = E.decode_to_midi(ids)
    assert data[:4] == b"MThd"
    assert len(read_midi(data).sounding()) == len(notes)


def test_decoder_rules():
    on, off, shift, vel = E.NOTE_ON, E.NOTE_OFF, E.TIME_SHIFT - 1, E.VELOCITY
    ids = [E.START, off + 60, vel + 10, on + 60, shift + 50, on + 60, shift + 10, off + 60, off + 60, on + 62,
           E.PAD, shift + 20, 9999]
    notes = E.events_to_notes(ids)
    assert list(notes["pitch"]) == [60, 60, 62]
    assert np.allclose(notes["start_s"], [0, 0.5, 0.6]) and np.allclose(notes["end_s"], [0.5, 0.6, 0.8])
    assert list(notes["velocity"]) == [E.bin_velocity(10)] * 3
    assert len(E.events_to_notes([on + 60, off + 60])) == 0  # zero length
    assert E.events_to_notes([on + 60, shift + 5])["velocity"][0] == 64  # no velocity token yet


# ---------------------------------------------------------------- augmentation


@settings(max_examples=100, deadline=None)
@given(note_arrays(max_notes=30, pitches=(20, 100)), st.integers(-12, 12))
def test_transpose(notes, k):
    ids = np.concatenate([[E.START, 395], E.notes_to_events(notes), [E.END]]).astype(np.uint16)
    moved = E.transpose(ids, k)
    assert moved is not None and moved.dtype == np.uint16
    assert np.array_equal(E.transpose(moved, -k), ids)
    control = ids >= E.TIME_SHIFT
    assert np.array_equal(moved[control], ids[control])
    a, b = E.events_to_notes(ids), E.events_to_notes(moved)
    assert np.array_equal(b["pitch"].astype(int), a["pitch"].astype(int) + k)
    assert np.array_equal(b["start_s"], a["start_s"])


def test_transpose_out_of_range():
    ids = E.notes_to_events(make_notes([0, 127], [0, 1], [0.5, 1.5], [64, 64]))
    assert E.transpose(ids, 1) is None and E.transpose(ids, -1) is None
    assert np.array_equal(E.transpose(ids, 0), ids)


@settings(max_examples=150, deadline=None)
@given(note_arrays(max_notes=30), st.sampled_from([0.9, 0.95, 1.0, 1.025, 1.05, 1.2]))
def test_stretch(notes, factor):
    ids = np.concatenate([[E.START, 391], E.notes_to_events(notes), [E.END]]).astype(np.uint16)
    stretched = E.stretch(ids, factor)
    assert stretched[0] == E.START and stretched[1] == 391 and stretched[-1] == E.END
    before, after = E.events_to_steps(ids), E.events_to_steps(stretched)
    assert len(after) == len(before)  # no note loses its length
    assert np.array_equal(np.sort(after["pitch"]), np.sort(before["pitch"]))
    order_b, order_a = np.lexsort((before["start"], before["pitch"])), np.lexsort((after["start"], after["pitch"]))
    expected = np.floor(before["start"][order_b] * factor + 0.5)
    assert np.abs(after["start"][order_a] - expected).max(initial=0) <= 2
    if factor == 1.0:
        assert np.array_equal(stretched, ids)


def test_stretch_real_file(twenty):
    ids = E.encode_midi(twenty[1])
    slow = E.stretch(ids, 1.05)
    before, after = E.events_to_notes(ids), E.events_to_notes(slow)
    assert len(after) == len(before)
    assert abs(after["end_s"].max() / before["end_s"].max() - 1.05) < 0.001


# ---------------------------------------------------------------- token files and the CLI


def test_token_file_and_cli_round_trip(tmp_path, twenty):
    midi = twenty[2]
    result = run_maestro("tokenize", str(midi), "--composer", "chopin", "--out-dir", str(tmp_path / "tok"))
    assert result.code == 0, result.stderr
    token_file = Path(result.stdout.strip())
    assert token_file.name == midi.stem + ".tokens.npz"
    tokens, vocab, written_by = tokenize_io.read_token_file(token_file)
    assert tokens.dtype == np.uint16 and vocab == E.vocab() and written_by["name"] == "performance"
    assert np.array_equal(tokens, E.encode_midi(midi, "Frédéric Chopin"))
    result = run_maestro("tokenize", "--decode", str(token_file), "--out-dir", str(tmp_path / "mid"))
    assert result.code == 0, result.stderr
    decoded = Path(result.stdout.strip())
    assert decoded.name == midi.stem + ".mid"
    assert_close_to(read_midi(decoded).sounding(), read_midi(midi).sounding())
    again = run_maestro("tokenize", "--decode", str(token_file), "--out-dir", str(tmp_path / "mid"))
    assert again.code == 1 and "output exists" in again.stderr


def test_cli_errors(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd but not really")
    empty = write_midi(tmp_path / "empty.mid", [])
    result = run_maestro("tokenize", str(bad), str(empty), "--out-dir", str(tmp_path))
    assert result.code == 1 and result.stdout == ""
    assert f"error: {bad}: not a readable MIDI file" in result.stderr
    assert f"error: {empty}: MIDI file has no notes" in result.stderr
    result = run_maestro("tokenize", str(empty), "--composer", "Frnz")
    assert result.code == 2 and "unknown composer 'Frnz'" in result.stderr


def test_decode_refuses_other_vocabulary(tmp_path):
    midi = write_midi(tmp_path / "a.mid", [(60, 0.0, 0.5, 80)])
    tokenizer = PerformanceTokenizer()
    token_file = tokenize_io.encode_file(tokenizer, midi, None, tmp_path)
    with np.load(token_file) as data:
        tokens, meta = data["tokens"], str(data["tokenizer"])
    other = dict(E.vocab(), EXTRA=E.VOCAB_SIZE)
    np.savez(tmp_path / "b.tokens.npz", tokens=tokens, vocab=np.array(json.dumps(other)), tokenizer=np.array(meta))
    with pytest.raises(MaestroError, match="tokenizer 'performance' version 1, not that of 'performance'"):
        tokenize_io.decode_file(tokenizer, tmp_path / "b.tokens.npz", tmp_path)
    out = tokenize_io.decode_file(tokenizer, token_file, tmp_path / "out")
    assert out.name == "a.mid" and len(read_midi(out).sounding()) == 1


# ---------------------------------------------------------------- the training cache


@pytest.fixture()
def small_root(tmp_path, maestro_root):
    """A MAESTRO-layout root: 5 real files over three splits, a corrupt file and an empty one."""
    root = tmp_path / "mini-maestro"
    rows = []
    with (maestro_root / "maestro-v3.0.0.csv").open(encoding="utf-8") as handle:
        metadata = list(csv.DictReader(handle))
    picked = [next(r for r in metadata if r["split"] == s) for s in ("train", "validation", "test")]
    picked += [r for r in metadata if r["split"] == "train" and "/" in r["canonical_composer"]
               and composer_class(r["canonical_composer"]) != "unknown"][:1]
    picked += [r for r in metadata if r["split"] == "train"][5:6]
    for row in picked:
        (root / row["midi_filename"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(maestro_root / row["midi_filename"], root / row["midi_filename"])
        rows.append(row)
    (root / "2004").mkdir(exist_ok=True)
    (root / "2004/corrupt.midi").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    write_midi(root / "2004/empty.midi", [])
    for name in ("corrupt", "empty"):
        rows.append(dict(rows[0], midi_filename=f"2004/{name}.midi", canonical_title=name, split="train"))
    with (root / "maestro-v3.0.0.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


class CountingTokenizer(PerformanceTokenizer):
    calls: list[str] = []

    def encode(self, midi, composer=None):
        CountingTokenizer.calls.append(Path(midi).name)
        return super().encode(midi, composer)


def test_cache_build_incremental(small_root, caplog):
    caplog.set_level("INFO", logger="maestro_cli")
    tokenizer = CountingTokenizer()
    CountingTokenizer.calls = []
    written = tokenize_io.build_cache(tokenizer, small_root, None, jobs=1)
    cache = tokenize_io.cache_dir_for(small_root, "performance")
    assert cache.parent.name.startswith("mini-maestro-") and cache.is_relative_to(Path(os.environ["MAESTRO_HOME"]))
    assert {p.name for p in written} == {"vocab.json", "train.u16", "train.index.json", "validation.u16",
                                         "validation.index.json", "test.u16", "test.index.json"}
    err = caplog.text
    assert "corrupt.midi: not a readable MIDI file" in err and "empty.midi: MIDI file has no notes" in err
    assert "tokenized 5 files, 0 unchanged, 2 skipped" in err
    assert len(CountingTokenizer.calls) == 7

    array, index = tokenize_io.load_cache(cache, "train")
    assert isinstance(array, np.memmap) and array.dtype == np.uint16
    assert [e["file"] for e in index if "corrupt" in e["file"] or "empty" in e["file"]] == []
    assert len(index) == 3 and sum(e["length"] for e in index) == len(array)
    for entry in index:
        piece = array[entry["offset"]:entry["offset"] + entry["length"]]
        assert np.array_equal(piece, E.encode_midi(small_root / entry["file"]))  # no composer token stored
        assert piece[0] == E.START and piece[-1] == E.END
    busoni = next(e for e in index if "/" in e["composer"])
    assert busoni["composer_class"] == busoni["composer"].split("/")[0].strip()
    assert json.loads((cache / "vocab.json").read_text())["vocab"] == E.vocab()

    CountingTokenizer.calls = []
    tokenize_io.build_cache(tokenizer, small_root, None, jobs=1)
    assert CountingTokenizer.calls == ["corrupt.midi", "empty.midi"]  # only the failures are retried
    assert "tokenized 0 files, 5 unchanged, 2 skipped" in caplog.text
    again, index_again = tokenize_io.load_cache(cache, "train")
    assert np.array_equal(again, array) and index_again == index

    changed = small_root / index[0]["file"]
    shutil.copy(small_root / index[1]["file"], changed)
    CountingTokenizer.calls = []
    tokenize_io.build_cache(tokenizer, small_root, None, jobs=1)
    assert sorted(CountingTokenizer.calls) == sorted(["corrupt.midi", "empty.midi", changed.name])
    array, index = tokenize_io.load_cache(cache, "train")
    assert np.array_equal(array[index[0]["offset"]:index[0]["offset"] + index[0]["length"]],
                          array[index[1]["offset"]:index[1]["offset"] + index[1]["length"]])


def test_cache_cli_parallel(small_root, tmp_path):
    out = tmp_path / "cache"
    result = run_maestro("tokenize", "--dataset", str(small_root), "--jobs", "2", "--out-dir", str(out))
    assert result.code == 0, result.stderr
    assert {Path(line).name for line in result.stdout.split()} >= {"train.u16", "validation.u16", "test.u16"}
    assert "2 skipped" in result.stderr
    for split in ("train", "validation", "test"):
        array, index = tokenize_io.load_cache(out, split)
        assert len(index) >= 1 and sum(e["length"] for e in index) == len(array)
        first = index[0]
        assert np.array_equal(array[first["offset"]:first["offset"] + first["length"]],
                              E.encode_midi(small_root / first["file"]))
    with pytest.raises(MaestroError, match="no 'nope' split"):
        tokenize_io.load_cache(out, "nope")


# ---------------------------------------------------------------- the MidiTok backend


@pytest.mark.parametrize("scheme", ["remi", "midilike"])
def test_miditok_backend(tmp_path, scheme):
    from maestro_cli.registry import get_backend

    tokenizer = get_backend("tokenizer", "miditok").create([f"scheme={scheme}"])
    assert tokenizer.name == f"miditok-{scheme}"
    notes = [(60, 0.0, 0.5, 80), (64, 0.5, 1.0, 100), (67, 1.0, 2.0, 40), (60, 1.5, 1.75, 90)]
    midi = write_midi(tmp_path / "a.mid", notes, pedal=[(0.2, 127), (0.4, 0)])
    ids = tokenizer.encode(midi, "chopin")
    vocab = tokenizer.vocab
    assert ids[0] == vocab["BOS_None"] and ids[1] == vocab["Composer_0"] and ids[-1] == vocab["EOS_None"]
    decoded = read_midi(tokenizer.decode(ids)).sounding()
    expected = read_midi(midi).sounding()  # the pedal holds the first note to 0.5 s
    assert sorted(decoded["pitch"]) == sorted(expected["pitch"])
    assert np.allclose(np.sort(decoded["start_s"]), np.sort(expected["start_s"]), atol=0.07)
    assert tokenizer.decode([9999, -1, 3])[:4] == b"MThd"
    with pytest.raises(UsageError, match="positions_per_beat"):
        get_backend("tokenizer", "miditok").create(["positions_per_beat=0"])
