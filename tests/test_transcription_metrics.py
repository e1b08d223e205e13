"""Transcription metrics against hand-computed cases, note readers, and `maestro evaluate transcription`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_maestro, write_midi

from maestro_cli.errors import MaestroError
from maestro_cli.metrics.transcription import (
    evaluate_files,
    evaluate_notes,
    evaluate_pedal,
    frame_scores,
    mean_scores,
    pedal_intervals,
    read_sustain,
)
from maestro_cli.symbolic.midi import read_notes
from maestro_cli.symbolic.midi import write_midi as write_note_midi
from maestro_cli.symbolic.notes import NOTE_DTYPE, from_rows, to_rows, write_notes_csv

# onset, offset, pitch, velocity: four 1 s notes, 0.5 s apart, on different pitches
REF = from_rows([[0.0, 1.0, 60, 20], [0.5, 1.5, 64, 40], [1.0, 2.0, 67, 60], [1.5, 2.5, 72, 80]])
GROUPS = ("note", "note_offset", "note_offset_velocity", "frame")


def shifted(notes, onset=0.0, offset=0.0):
    out = notes.copy()
    out["start_s"] += onset
    out["end_s"] += offset
    return out


def test_perfect_transcription_scores_one():
    scores = evaluate_notes(REF, REF.copy())
    for group in GROUPS:
        assert scores[f"{group}_precision"] == scores[f"{group}_recall"] == scores[f"{group}_f1"] == 1.0
    assert scores["n_ref"] == scores["n_est"] == 4


def test_onset_tolerance_is_50_ms():
    assert evaluate_notes(REF, shifted(REF, 0.06, 0.06))["note_f1"] == 0.0
    assert evaluate_notes(REF, shifted(REF, 0.04, 0.04))["note_f1"] == 1.0
    wrong_pitch = REF.copy()
    wrong_pitch["pitch"] += 1
    assert evaluate_notes(REF, wrong_pitch)["note_f1"] == 0.0


def test_half_the_notes_found():
    scores = evaluate_notes(REF, REF[:2])
    assert scores["note_precision"] == 1.0 and scores["note_recall"] == 0.5
    assert scores["note_f1"] == pytest.approx(2 / 3)


def test_offset_tolerance_is_20_percent_or_50_ms():
    # 1 s notes: 20 % = 0.2 s
    assert evaluate_notes(REF, shifted(REF, offset=0.15))["note_offset_f1"] == 1.0
    late = evaluate_notes(REF, shifted(REF, offset=0.25))
    assert late["note_f1"] == 1.0 and late["note_offset_f1"] == 0.0
    # 0.1 s note: 20 % = 0.02 s, so the 50 ms floor applies
    short = from_rows([[0.0, 0.1, 60, 80]])
    assert evaluate_notes(short, shifted(short, offset=0.045))["note_offset_f1"] == 1.0
    assert evaluate_notes(short, shifted(short, offset=0.06))["note_offset_f1"] == 0.0


def test_velocity_is_compared_after_linear_rescaling():
    affine = REF.copy()
    affine["velocity"] = REF["velocity"] * 0.5 + 30  # any affine map of the reference velocities is perfect
    assert evaluate_notes(REF, affine)["note_offset_velocity_f1"] == pytest.approx(1.0)
    # est velocities 20,20,80,80 vs normalised reference 0,1/3,2/3,1: best fit 1/6 and 5/6, every error 1/6 > 0.1
    coarse = REF.copy()
    coarse["velocity"] = [20, 20, 80, 80]
    scores = evaluate_notes(REF, coarse)
    assert scores["note_offset_f1"] == 1.0 and scores["note_offset_velocity_f1"] == 0.0


def test_frame_scores_on_10_ms_grid():
    ref = from_rows([[0.0, 1.0, 60, 80]])
    est = from_rows([[0.0, 0.5, 60, 80], [0.0, 0.5, 48, 80]])
    precision, recall, f1 = frame_scores(ref, est)  # 50 of 100 estimated cells right, 50 of 100 ref cells found
    assert (precision, recall) == (0.5, 0.5) and f1 == 0.5
    assert evaluate_notes(ref, ref[:])["frame_f1"] == 1.0


def test_empty_estimate_scores_zero():
    scores = evaluate_notes(REF, np.zeros(0, NOTE_DTYPE))
    assert scores["note_f1"] == scores["frame_f1"] == 0.0 and scores["n_est"] == 0


def test_mean_scores_averages_metrics_and_sums_counts():
    rows = [evaluate_notes(REF, REF), evaluate_notes(REF, np.zeros(0, NOTE_DTYPE))]
    mean = mean_scores(rows)
    assert mean["note_f1"] == 0.5 and mean["n_ref"] == 8


def test_tsv_with_header_and_csv_round_trip(tmp_path):
    tsv = tmp_path / "ref.tsv"
    tsv.write_text("onset\toffset\tnote\tvelocity\n0.52\t0.65\t51\t50\n0.10\t0.30\t39.0\t42\n")
    notes = read_notes(tsv)
    assert to_rows(notes).tolist() == [[0.10, 0.30, 39, 42], [0.52, 0.65, 51, 50]]
    hashed = tmp_path / "maps.tsv"
    hashed.write_text("# onset,offset,note,velocity\n0.5\t1.0\t60\t70\n")
    assert to_rows(read_notes(hashed)).tolist() == [[0.5, 1.0, 60, 70]]
    out = tmp_path / "notes.csv"
    write_notes_csv(REF, out)
    assert out.read_text().splitlines()[0] == "onset_s,offset_s,pitch,velocity"
    assert np.allclose(to_rows(read_notes(out)), to_rows(REF))


def test_bad_note_tables_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("onset,offset,pitch,velocity\n0.1,0.2,60,80\n0.3,oops,61,80\n")
    with pytest.raises(MaestroError, match="line 3: expected numbers"):
        read_notes(bad)
    backwards = tmp_path / "backwards.csv"
    backwards.write_text("1.0,0.5,60,80\n")
    with pytest.raises(MaestroError, match="offset before onset"):
        read_notes(backwards)
    other = tmp_path / "x.json"
    other.write_text("{}")
    with pytest.raises(MaestroError, match="unknown note file type"):
        read_notes(other)


def test_sustain_pedal_is_applied_to_a_midi_reference(tmp_path):
    ref = write_midi(tmp_path / "ref.mid", [(60, 0.0, 0.5, 80), (64, 2.0, 2.5, 80)], pedal=[(0.25, 127), (1.5, 0)])
    notes = read_notes(ref)
    # held to the pedal release; the second is not
    assert notes["end_s"].tolist() == pytest.approx([1.5, 2.5], abs=2e-3)
    held = tmp_path / "held.csv"
    write_notes_csv(from_rows([[0.0, 1.5, 60, 80], [2.0, 2.5, 64, 80]]), held)
    key_up = tmp_path / "key_up.csv"
    write_notes_csv(from_rows([[0.0, 0.5, 60, 80], [2.0, 2.5, 64, 80]]), key_up)
    assert evaluate_notes(read_notes(ref), read_notes(held))["note_offset_f1"] == 1.0
    assert evaluate_notes(read_notes(ref), read_notes(key_up))["note_offset_f1"] == 0.5


def test_written_midi_reads_back(tmp_path):
    write_note_midi(REF, tmp_path / "est.mid")
    assert np.allclose(to_rows(read_notes(tmp_path / "est.mid")), to_rows(REF), atol=2e-3)


def test_pedal_intervals_from_control_changes():
    times = [3.0, 0.5, 1.0, 1.2, 2.0, 2.0, 4.0]
    values = [127, 100, 80, 10, 127, 0, 70]  # unsorted; repeated downs; a zero-length span at 2.0; never lifted
    spans = pedal_intervals(times, values, end=5.0)
    assert spans.tolist() == [[0.5, 1.2], [3.0, 5.0]]
    assert pedal_intervals([], [], end=1.0).shape == (0, 2)


def test_pedal_f1_kong_convention():
    """Onset within 200 ms; offset within 20 % of the reference span or 50 ms, whichever is larger."""
    ref = np.array([[0.0, 1.0], [2.0, 2.2], [3.0, 4.0], [5.0, 6.0]])
    est = np.array([[0.15, 1.1],    # onset +150 ms, offset +100 ms (20 % of 1 s = 200 ms): full match
                    [2.0, 2.3],     # onset exact, offset +100 ms > max(40 ms, 50 ms): onset-only match
                    [3.25, 4.0],    # onset +250 ms: no match
                    [7.0, 8.0]])    # nothing there
    scores = evaluate_pedal(ref, est)
    assert scores["pedal_precision"] == scores["pedal_recall"] == scores["pedal_f1"] == 0.25
    assert scores["pedal_onset_f1"] == 0.5
    assert scores["n_ref_pedal"] == scores["n_est_pedal"] == 4
    assert evaluate_pedal(ref, np.zeros((0, 2)))["pedal_f1"] == 0.0


def test_pedal_scores_only_when_both_midi_files_carry_cc64(tmp_path):
    notes = [(60, 0.0, 0.5, 80), (64, 2.0, 2.5, 80)]
    ref = write_midi(tmp_path / "ref.mid", notes, pedal=[(0.25, 127), (1.5, 0), (1.8, 127), (2.6, 0)])
    est = write_midi(tmp_path / "est.mid", notes, pedal=[(0.3, 127), (1.5, 0)])
    bare = write_midi(tmp_path / "bare.mid", notes)
    assert read_sustain(ref) == pytest.approx(np.array([[0.25, 1.5], [1.8, 2.6]]), abs=2e-3)
    assert read_sustain(bare) is None
    scores = evaluate_files(ref, est)
    assert scores["pedal_precision"] == 1.0 and scores["pedal_recall"] == 0.5
    assert "pedal_f1" not in evaluate_files(ref, bare)
    assert "pedal_f1" not in evaluate_files(bare, est)
    rows = [evaluate_files(ref, est), evaluate_files(ref, bare)]
    assert mean_scores(rows)["pedal_recall"] == 0.5 and mean_scores(rows)["note_f1"] == 1.0


def test_written_midi_keeps_control_changes(tmp_path):
    controls = [(0.5, 64, 127), (0.5, 67, 127), (1.0, 64, 0), (1.0, 67, 0), (0.2, 64, 0)]
    write_note_midi(REF, tmp_path / "est.mid", controls=controls)
    assert read_sustain(tmp_path / "est.mid") == pytest.approx(np.array([[0.5, 1.0]]), abs=2e-3)
    assert np.allclose(to_rows(read_notes(tmp_path / "est.mid", sustain=False)), to_rows(REF), atol=2e-3)


@pytest.mark.slow
def test_cli_single_pair_json_and_plot(tmp_path):
    ref = tmp_path / "piece.csv"
    write_notes_csv(REF, ref)
    est = tmp_path / "piece.mid"
    write_note_midi(REF[:3], est)
    result = run_maestro("evaluate", "transcription", "--ref", str(ref), "--est", str(est), "--json",
                         "--plot", str(tmp_path / "roll.png"))
    assert result.code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["note_recall"] == 0.75 and row["note_precision"] == 1.0 and row["n_ref"] == 4
    assert (tmp_path / "roll.png").read_bytes()[:4] == b"\x89PNG"
    again = run_maestro("evaluate", "transcription", "--ref", str(ref), "--est", str(est), "--plot",
                        str(tmp_path / "roll.png"))
    assert again.code == 1 and "roll.png: output exists; use --overwrite" in again.stderr and not again.stdout


@pytest.mark.slow
def test_cli_batch_matches_stems_and_prints_mean(tmp_path):
    refs, ests = tmp_path / "ref", tmp_path / "est"
    refs.mkdir()
    ests.mkdir()
    for name in ("a", "b", "c"):
        write_notes_csv(REF, refs / f"{name}.tsv")
    write_note_midi(REF, ests / "a.mid")
    write_note_midi(shifted(REF, 0.1, 0.1), ests / "b.mid")
    (ests / "a.notes.csv").write_text("not a note table\n")  # other stems are ignored
    result = run_maestro("evaluate", "transcription", "--ref", str(refs), "--est", str(ests), "--json")
    assert result.code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["name"] for row in rows] == ["a", "b", "mean"]
    assert [row["note_f1"] for row in rows] == [1.0, 0.0, 0.5]
    assert "warning: c: no estimate" in result.stderr
    table = run_maestro("evaluate", "transcription", "--ref", str(refs), "--est", str(ests))
    assert "mean" in table.stdout and "0.500" in table.stdout


def test_cli_errors(tmp_path):
    ref = tmp_path / "ref.csv"
    write_notes_csv(REF, ref)
    missing = run_maestro("evaluate", "transcription", "--ref", str(ref), "--est", str(tmp_path / "nope.mid"))
    assert missing.code == 1 and f"error: {tmp_path / 'nope.mid'}: no such file" in missing.stderr
    not_midi = tmp_path / "est.mid"
    not_midi.write_text("hello")
    bad = run_maestro("evaluate", "transcription", "--ref", str(ref), "--est", str(not_midi))
    assert bad.code == 1 and f"error: {not_midi}: not a MIDI file (it does not start with MThd)" in bad.stderr
    mixed = run_maestro("evaluate", "transcription", "--ref", str(tmp_path), "--est", str(ref))
    assert mixed.code == 2 and "both be files or both be folders" in mixed.stderr
