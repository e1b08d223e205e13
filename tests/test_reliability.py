"""Reliability edge cases (issue 30): output folders, odd score tempos, truncated audio, doubled unisons, usage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import run_maestro, write_midi

from maestro_cli.errors import MaestroError
from maestro_cli.outputs import atomic_output


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder that takes no new files: read-only for a user; ``/sys`` (denied even to root) when run as root."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def test_an_unwritable_output_folder_is_one_error_naming_it_before_any_work(tmp_path):
    pieces = [write_midi(tmp_path / f"p{i}.mid", [(60 + i, 0, 0.5, 80)]) for i in range(2)]
    folder = unwritable_folder(tmp_path)
    for args in (["--out-dir", str(folder / "wav")], ["--out-dir", str(folder), "--jobs", "2"]):
        result = run_maestro("render", *map(str, pieces), *args)
        assert result.code == 1 and result.stdout == ""
        assert result.stderr.splitlines() == [f"error: {folder}: cannot write into this folder (permission denied)"]
    single = run_maestro("render", str(pieces[0]), "-o", str(folder / "x.wav"))
    assert single.stderr.splitlines() == [f"error: {folder}: cannot write into this folder (permission denied)"]


def test_an_output_that_is_a_folder_is_a_clean_error_even_with_overwrite(tmp_path):
    piece = write_midi(tmp_path / "p.mid", [(60, 0, 0.5, 80)])
    (tmp_path / "out.wav").mkdir()
    result = run_maestro("render", str(piece), "-o", str(tmp_path / "out.wav"), "--overwrite")
    assert result.code == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'out.wav'}: is a folder; name an output file (or give the folder with --out-dir)"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_failed_rename_names_the_output_not_the_hidden_temporary_file(tmp_path):
    target = tmp_path / "x.csv"
    with pytest.raises(MaestroError) as caught:
        with atomic_output(target) as tmp:
            tmp.write_text("a,b\n")
            target.mkdir()
            (target / "inside").write_text("")  # the rename now fails: a non-empty folder is in the way
    assert caught.value.path == str(target) and ".tmp" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def with_tempo(tmp_path: Path, shared_data: Path, tempo: str | None) -> Path:
    """Mozart K. 331 (Vienna 4x22) with its one tempo mark (72, measure 1) set to ``tempo``, or removed."""
    text = (shared_data / "vienna4x22" / "musicxml" / "Mozart_K331_1st-mov.musicxml").read_text()
    assert text.count('<sound tempo="72"/>') == 1
    path = tmp_path / f"k331_{tempo}.musicxml"
    path.write_text(text.replace('<sound tempo="72"/>', f'<sound tempo="{tempo}"/>' if tempo else ""))
    return path


@pytest.mark.parametrize("tempo", ["0", "0.0001", "100000"])
def test_score_tempo_marks_outside_10_to_1000_qpm_are_ignored_with_a_warning(tmp_path, shared_data, caplog, tempo):
    from maestro_cli.symbolic.scores import read_score

    odd = with_tempo(tmp_path, shared_data, tempo)
    with caplog.at_level("WARNING", logger="maestro_cli"):
        notes = read_score(odd).notes
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {odd}: measure 1: tempo mark of {float(tempo):g} quarter notes per minute ignored "
        "(outside 10-1000 quarter notes per minute)"]
    plain = read_score(with_tempo(tmp_path, shared_data, None)).notes  # no mark: 120 quarters per minute
    assert len(notes) == len(plain) > 0 and (notes["start_s"] == plain["start_s"]).all()
    assert notes["start_s"].max() == pytest.approx(plain["onset_quarters"].max() / 2)


@pytest.mark.slow
def test_align_warns_about_an_odd_tempo_mark_and_writes_the_map(tmp_path, shared_data):
    odd = with_tempo(tmp_path, shared_data, "0")
    performance = shared_data / "vienna4x22" / "midi" / "Mozart_K331_1st-mov_p01.mid"
    result = run_maestro("align", str(performance), "--score", str(odd), "--format", "midi", "-o",
                         str(tmp_path / "out.mid"))
    assert result.code == 0, result.stderr
    assert result.stderr.splitlines()[0].startswith(f"warning: {odd}: measure 1: tempo mark of 0 quarter notes")
    assert (tmp_path / "out.mid").stat().st_size > 0


@pytest.mark.slow
def test_align_format_match_takes_an_unquantised_midi_score(tmp_path, shared_data):
    """A performance MIDI as its own score: every note matched (partitura's score builder needs a grid)."""
    from maestro_cli.align.notes import read_reference

    performance = shared_data / "vienna4x22" / "midi" / "Chopin_op10_no3_p01.mid"
    result = run_maestro("align", str(performance), "--score", str(performance), "--format", "match", "-o",
                         str(tmp_path / "self.match"))
    assert result.code == 0, result.stderr
    labels = [label for label, _, _ in read_reference(tmp_path / "self.match").items]
    assert len(labels) > 400 and set(labels) == {"match"}


EXCERPT = Path("maestro-audio-excerpt") / "2018" / "MIDI-Unprocessed_Chamber3_MID--AUDIO_10_R3_2018_wav--1.wav"


def cut(source: Path, target: Path, size: int) -> Path:
    target.write_bytes(source.read_bytes()[:size])
    return target


@pytest.mark.slow
def test_a_truncated_wav_is_read_with_a_warning_giving_both_lengths(tmp_path, shared_data, caplog):
    from maestro_cli.audio.io import load_audio

    whole = shared_data / EXCERPT  # 2.00 s, 48 kHz stereo 16-bit: 192,000 bytes a second
    with caplog.at_level("WARNING", logger="maestro_cli"):
        assert len(load_audio(whole, 16000)) == 32000
        assert not caplog.records
        short = cut(whole, tmp_path / "short.wav", 44 + 230_400)  # 1.2 s of its 2 s
        assert len(load_audio(short, 16000)) == 19200
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: {short}: truncated: the header says 2.00 s, the file holds 1.20 s; using what it holds"]
    result = run_maestro("transcribe", str(short), "-b", "onsets-frames", "-o", str(tmp_path / "short.mid"))
    assert result.code == 0 and (tmp_path / "short.mid").is_file()
    assert result.stderr.splitlines() == [caplog.records[0].getMessage()]


def test_a_wav_cut_to_3_kb_is_reported_as_truncated_not_silent(tmp_path, shared_data):
    import numpy as np
    import soundfile

    from maestro_cli.audio.io import load_audio

    audio, rate = soundfile.read(str(shared_data / EXCERPT))
    padded = tmp_path / "padded.wav"  # a recording that starts with a second of silence, as most do
    soundfile.write(str(padded), np.concatenate([np.zeros((rate, 2)), audio]), rate, subtype="PCM_16")
    head = cut(padded, tmp_path / "head.wav", 3000)
    with pytest.raises(MaestroError) as caught:
        load_audio(head, 16000)
    assert caught.value.message == "truncated: the header says 3.00 s, the file holds 0.02 s, silent up to there"


@pytest.mark.slow
def test_doubled_unisons_in_a_score_are_one_note_so_no_false_deletions(tmp_path, shared_data):
    """Vienna 4x22 Chopin Op. 10/3 p01 played every note; its match file has one score note per key and 3 deletions."""
    import csv

    from maestro_cli.align.notes import read_reference

    vienna = shared_data / "vienna4x22"
    result = run_maestro("align", str(vienna / "midi" / "Chopin_op10_no3_p01.mid"), "--score",
                         str(vienna / "musicxml" / "Chopin_op10_no3.musicxml"), "--format", "notes", "-o",
                         str(tmp_path / "p01.csv"))
    assert result.code == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "p01.csv").open()))
    assert not [row["score_id"] for row in rows if "voice_overlap" in row["score_id"]]
    reference = read_reference(vienna / "match" / "Chopin_op10_no3_p01.match")
    deleted = {score_id for label, score_id, _ in reference.items if label == "deletion"}
    assert {row["score_id"] for row in rows if row["status"] == "deletion"} == deleted and len(deleted) == 3
    assert sum(row["status"] == "match" for row in rows) == 451


def test_merging_unisons_keeps_the_files_id_and_the_longer_length():
    import numpy as np

    from maestro_cli.symbolic.scores import SCORE_DTYPE, merge_unisons

    notes = np.zeros(4, SCORE_DTYPE)
    notes["id"] = ["n4voice_overlap", "n4", "n5", "n6"]
    notes["pitch"] = [40, 40, 40, 52]
    notes["onset_quarters"] = [0.0, 0.0, 1.0, 0.0]
    notes["duration_quarters"] = notes["end_s"] = [0.25, 1.0, 0.5, 1.0]
    merged = merge_unisons(notes)
    assert list(merged["id"]) == ["n4", "n5", "n6"] and list(merged["duration_quarters"]) == [1.0, 0.5, 1.0]


def test_generate_refuses_an_empty_composer_and_an_endless_piece(tmp_path):
    empty = run_maestro("generate", "--composer", "", "--out-dir", str(tmp_path))
    assert empty.code == 2 and empty.stderr.splitlines() == [
        "error: --composer is empty; name a composer (e.g. Chopin), or leave it out for any composer"]
    endless = run_maestro("generate", "--seconds", "100000", "--out-dir", str(tmp_path))
    assert endless.code == 2 and endless.stderr.splitlines() == [
        "error: --seconds must be at most 3600 (an hour of music per piece), not 100000"]
    assert list(tmp_path.iterdir()) == []


def test_outputs_that_belong_together_are_written_all_or_none(tmp_path):
    from maestro_cli.outputs import atomic_outputs

    midi, report = tmp_path / "x.mid", tmp_path / "x.csv"
    midi.write_text("old midi")
    with pytest.raises(RuntimeError):
        with atomic_outputs(midi, report) as (tmp_midi, tmp_report):
            tmp_midi.write_text("new midi")
            raise RuntimeError("the report failed")
    assert midi.read_text() == "old midi" and not report.exists()
    with pytest.raises(MaestroError) as caught:
        with atomic_outputs(midi, report) as (tmp_midi, tmp_report):
            tmp_midi.write_text("new midi")
            tmp_report.write_text("new report")
            report.mkdir()
            (report / "inside").write_text("")  # the second rename fails: a non-empty folder is in the way
    assert caught.value.path == str(report)
    assert midi.read_text() == "old midi"  # the first rename was undone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv", "x.mid"]
    report.joinpath("inside").unlink()
    report.rmdir()
    with atomic_outputs(midi, report) as (tmp_midi, tmp_report):
        tmp_midi.write_text("new midi")
        tmp_report.write_text("new report")
    assert (midi.read_text(), report.read_text()) == ("new midi", "new report")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv", "x.mid"]


@pytest.mark.slow
def test_align_warns_when_the_score_is_of_another_piece(tmp_path, shared_data):
    vienna = shared_data / "vienna4x22"
    performance = vienna / "midi" / "Chopin_op10_no3_p01.mid"
    score = vienna / "musicxml" / "Mozart_K331_1st-mov.musicxml"
    result = run_maestro("align", str(performance), "--score", str(score), "-o", str(tmp_path / "map.csv"))
    assert result.code == 0 and (tmp_path / "map.csv").is_file()
    [line] = result.stderr.splitlines()
    assert line.startswith(f"warning: {score}: low alignment confidence 0.") and str(performance) in line
    right = run_maestro("align", str(performance), "--score", str(vienna / "musicxml" / "Chopin_op10_no3.musicxml"),
                        "-o", str(tmp_path / "right.csv"))
    assert right.code == 0 and right.stderr == ""


def test_output_names_that_do_not_fit_the_format_and_a_report_without_a_score_are_usage_errors(tmp_path, shared_data):
    vienna = shared_data / "vienna4x22"
    performance, score = vienna / "midi" / "Chopin_op10_no3_p01.mid", vienna / "musicxml" / "Chopin_op10_no3.musicxml"
    audio = shared_data / EXCERPT
    cases = [
        (["align", str(performance), "--score", str(score), "-o", str(tmp_path / "out.json"), "--format", "csv"],
         "error: -o out.json does not fit --format csv: name a .csv file, or pick the --format of that file"),
        (["transcribe", str(audio), "--score", str(score), "--report", str(tmp_path / "dev.xlsx"), "-o",
          str(tmp_path / "t.mid")], "error: --report must name a .csv or .json file, not 'dev.xlsx'"),
        (["transcribe", str(audio), "--report", str(tmp_path / "dev.csv")],
         "error: --report needs --score, which is missing (the score of the recording)"),
    ]
    for args, message in cases:
        result = run_maestro(*args)
        assert (result.code, result.stderr.splitlines()) == (2, [message])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_an_empty_midi_file_is_called_empty(tmp_path):
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    for args in (["render", str(empty), "--out-dir", str(tmp_path / "o")],
                 ["tokenize", str(empty), "--out-dir", str(tmp_path / "o")],
                 ["generate", "--primer", str(empty), "--seconds", "1", "--seed", "1", "--out-dir",
                  str(tmp_path / "o")]):
        result = run_maestro(*args)
        assert (result.code, result.stderr.splitlines()) == (1, [f"error: {empty}: empty file (0 bytes)"]), args
