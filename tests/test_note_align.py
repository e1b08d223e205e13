"""Scores (MusicXML with repeats, grace notes, ties, tempo; .mxl; MEI/kern by content; errors), note-level
alignment (notes CSV, match files), the note-alignment metric, and the parangonar plugin."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import run_maestro, write_midi

from maestro_cli.align.notes import read_reference
from maestro_cli.errors import MaestroError
from maestro_cli.metrics import alignment as metrics
from maestro_cli.registry import get_backend, get_registry
from maestro_cli.symbolic import scores

MELODY = [(60, 2), (64, 1), (67, 1), (72, 2), (71, 2), (69, 1), (67, 1), (65, 2), (64, 2), (62, 2),
          (65, 1), (69, 1), (74, 2), (72, 1), (71, 1), (69, 2), (67, 2), (72, 2), (76, 2), (74, 2), (72, 2)]
STEPS = {0: ("C", 0), 2: ("D", 0), 4: ("E", 0), 5: ("F", 0), 7: ("G", 0), 9: ("A", 0), 11: ("B", 0), 1: ("C", 1),
         3: ("D", 1), 6: ("F", 1), 8: ("G", 1), 10: ("A", 1)}


def _pitch(midi: int) -> str:
    step, alter = STEPS[midi % 12]
    return (f"<pitch><step>{step}</step>{f'<alter>{alter}</alter>' if alter else ''}"
            f"<octave>{midi // 12 - 1}</octave></pitch>")


def _note(midi: int, eighths: int, chord: bool = False, tie: str = "", grace: bool = False) -> str:
    kind = {1: "eighth", 2: "quarter", 4: "half"}[eighths]
    ties = "".join(f'<tie type="{t}"/>' for t in tie.split())
    tied = "".join(f'<tied type="{t}"/>' for t in tie.split())
    tied = f"<notations>{tied}</notations>" if tied else ""
    if grace:
        return f'<note><grace slash="yes"/>{_pitch(midi)}<voice>1</voice><type>eighth</type></note>'
    return (f"<note>{'<chord/>' if chord else ''}{_pitch(midi)}<duration>{eighths}</duration>{ties}"
            f"<voice>1</voice><type>{kind}</type>{tied}</note>")


def musicxml(repeat: bool = True) -> str:
    """Six 4/4 bars at 100 qpm: bars 2-3 repeated, a grace note in bar 4, a note tied over bars 4-5."""
    notes, bars = list(MELODY), []
    for number in range(1, 7):
        body, used = [], 0
        if number == 1:
            body.append("<attributes><divisions>2</divisions><key><fifths>0</fifths></key><time><beats>4</beats>"
                        "<beat-type>4</beat-type></time><clef><sign>G</sign><line>2</line></clef></attributes>"
                        '<direction placement="above"><direction-type><metronome><beat-unit>quarter</beat-unit>'
                        '<per-minute>100</per-minute></metronome></direction-type><sound tempo="100"/></direction>')
        if number == 2 and repeat:
            body.append('<barline location="left"><bar-style>heavy-light</bar-style>'
                        '<repeat direction="forward"/></barline>')
        if number == 4:
            body.append(_note(74, 1, grace=True))
        if number == 5:  # the tied note's second half
            body.append(_note(72, 4, tie="stop"))
            used = 4
        while used < 8 and notes:
            pitch, length = notes.pop(0)
            if number == 4 and used + length > 6:  # the tied note: a half note tied into bar 5
                body.append(_note(72, 2, tie="start") + _note(48, 2, chord=True))
                used += 2
                break
            body.append(_note(pitch, length))
            if used % 4 == 0:
                body.append(_note(pitch - 24, length, chord=True))
            used += length
        while used < 8:
            body.append(f"<note>{_pitch(60)}<duration>1</duration><voice>1</voice><type>eighth</type></note>")
            used += 1
        if number == 3 and repeat:
            body.append('<barline location="right"><bar-style>light-heavy</bar-style>'
                        '<repeat direction="backward"/></barline>')
        bars.append(f'<measure number="{number}">{"".join(body)}</measure>')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="3.1"><part-list>'
            '<score-part id="P1"><part-name>Piano</part-name></score-part></part-list>'
            f'<part id="P1">{"".join(bars)}</part></score-partwise>\n')


@pytest.fixture(scope="module")
def xml_score(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scores") / "piece.musicxml"
    path.write_text(musicxml())
    return path


def performance_of(score: scores.Score, path: Path, stretch: float = 1.15, lead: float = 0.7) -> Path:
    """The score's notes played 15 % slower after a lead-in, with a little timing noise, as MIDI."""
    rng = np.random.default_rng(3)
    notes = score.notes
    start = lead + stretch * notes["start_s"] + rng.normal(0, 0.01, len(notes))
    start = np.maximum(start, 0.0)
    end = start + stretch * np.maximum(notes["end_s"] - notes["start_s"], 0.05)
    return write_midi(path, [(int(p), float(s), float(e), 70) for p, s, e in zip(notes["pitch"], start, end)])


def test_musicxml_repeats_grace_ties_tempo(xml_score):
    plain, unfolded = scores.score_variants(xml_score)
    assert (plain.variant, unfolded.variant) == ("plain", "unfolded")
    notes = plain.notes
    assert notes["grace"].sum() == 1 and notes[notes["grace"]]["pitch"][0] == 74
    tied = notes[(notes["pitch"] == 72) & (notes["onset_quarters"] == 15)]
    assert len(tied) == 1 and tied["duration_quarters"][0] == pytest.approx(3.0)  # half + tied half, merged
    assert not len(notes[(notes["onset_quarters"] == 16) & (notes["pitch"] == 72)])  # no note at the tie's end
    bar2 = notes[notes["measure"] == 2]["start_s"].min()
    assert bar2 == pytest.approx(4 * 0.6)  # 100 quarters per minute
    assert notes["onset_beats"][notes["measure"] == 2].min() == pytest.approx(4.0)
    repeated = notes["measure"].__ge__(2) & notes["measure"].__le__(3) & ~notes["grace"]
    assert len(unfolded.notes) == len(notes) + repeated.sum()
    assert len(set(unfolded.notes["id"])) == len(unfolded.notes)


@pytest.mark.parametrize("repeats_played", [True, False])
def test_performance_with_or_without_repeats_aligns(xml_score, tmp_path, repeats_played):
    variant = scores.read_score(xml_score, unfold=repeats_played)
    perf = performance_of(variant, tmp_path / "perf.mid")
    result = get_backend("aligner", "dtw").create([]).align(perf, xml_score, kind="midi")
    assert result.info["score_variant"] == ("unfolded" if repeats_played else "plain")
    assert set(result.info["score_variant_confidence"]) == {"plain", "unfolded"}
    assert result.notes.counts() == {"matched_notes": len(variant.notes), "deleted_notes": 0, "inserted_notes": 0}
    mapped = metrics.map_times(variant.notes["start_s"], np.asarray(result.score_times),
                               np.asarray(result.performance_times))
    expected = 0.7 + 1.15 * variant.notes["start_s"]
    assert np.percentile(np.abs(mapped - expected), 90) < 0.03


def test_mxl_and_content_detection(xml_score, tmp_path):
    mxl = tmp_path / "piece.mxl"
    with zipfile.ZipFile(mxl, "w") as archive:
        archive.writestr("META-INF/container.xml", '<?xml version="1.0"?><container><rootfiles>'
                         '<rootfile full-path="score.xml"/></rootfiles></container>')
        archive.writestr("score.xml", xml_score.read_text())
    disguised = tmp_path / "piece.mid"  # the suffix lies: MusicXML content
    disguised.write_text(xml_score.read_text())
    reference = scores.read_score(xml_score).notes
    for path, fmt in ((mxl, "mxl"), (disguised, "musicxml")):
        score = scores.read_score(path)
        assert score.format == fmt
        assert np.array_equal(score.notes["pitch"], reference["pitch"])
        assert np.allclose(score.notes["start_s"], reference["start_s"])


@pytest.mark.slow
def test_bad_scores_get_one_line_errors(xml_score, tmp_path):
    truncated = tmp_path / "broken.musicxml"
    truncated.write_text(xml_score.read_text()[:700])
    text = tmp_path / "notes.xml"
    text.write_text("this is not a score\n")
    zipped = tmp_path / "other.mxl"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("readme.txt", "hello")
    for path, message in ((truncated, "not a readable musicxml score"), (text, "not a score"),
                          (zipped, "not a compressed MusicXML")):
        with pytest.raises(MaestroError, match=message):
            scores.read_score(path)
    perf = tmp_path / "perf.mid"
    write_midi(perf, [(60, 0.0, 0.5, 80), (64, 0.5, 1.0, 80)])
    result = run_maestro("align", str(perf), "--score", str(truncated), "-o", str(tmp_path / "a.csv"))
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {truncated}: not a readable musicxml score")


@pytest.fixture(scope="module")
def vienna(shared_data) -> dict:
    root = shared_data / "vienna4x22"
    return {"score": root / "musicxml" / "Schubert_D783_no15.musicxml",
            "perf": root / "midi" / "Schubert_D783_no15_p02.mid",
            "match": root / "match" / "Schubert_D783_no15_p02.match"}


@pytest.mark.slow
def test_notes_csv_has_every_score_note_once_and_scores_against_the_match_file(vienna, tmp_path):
    out = tmp_path / "p02.notes.csv"
    result = run_maestro("align", str(vienna["perf"]), "--score", str(vienna["score"]), "--format", "notes",
                         "-o", str(out))
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == str(out)
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["score_id", "pitch", "score_onset_beats", "score_onset_s", "perf_onset_s",
                             "perf_offset_s", "perf_velocity", "status"]
    score = scores.read_score(vienna["score"])  # this Vienna 4x22 score is written out (no repeat signs)
    score_rows = [row for row in rows if row["status"] != "insertion"]
    assert sorted(row["score_id"] for row in score_rows) == sorted(score.notes["id"])
    played = [(row["pitch"], row["perf_onset_s"]) for row in rows if row["status"] != "deletion"]
    assert len(played) == len(set(played))
    meta = json.loads(out.with_suffix(".meta.json").read_text())
    assert meta["score_variant"] == "plain" and meta["score_format"] == "musicxml"
    assert meta["matched_notes"] == sum(row["status"] == "match" for row in rows)
    scored = metrics.note_alignment_scores(read_reference(out), read_reference(vienna["match"]))
    assert scored["match_f"] > 0.99
    evaluated = run_maestro("evaluate", "alignment", "--ref", str(vienna["match"]), "--est", str(out), "--json")
    assert evaluated.code == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["match_f"] == pytest.approx(scored["match_f"])


@pytest.mark.slow
def test_match_format_round_trip_and_metric_agrees_with_parangonar(vienna, tmp_path):
    import parangonar
    import partitura

    notes, match = tmp_path / "p.notes.csv", tmp_path / "p.match"
    for out, fmt in ((notes, "notes"), (match, "match")):
        result = run_maestro("align", str(vienna["perf"]), "--score", str(vienna["score"]), "--format", fmt,
                             "-o", str(out))
        assert result.code == 0, result.stderr
    assert match.read_text().startswith("info(matchFileVersion,")
    scored = metrics.note_alignment_scores(read_reference(notes), read_reference(match))
    assert all(scored[f"{label}_f"] == 1.0 for label in ("match", "deletion", "insertion"))
    ours = metrics.note_alignment_scores(read_reference(match), read_reference(vienna["match"]))
    predicted = partitura.load_match(str(match))[1]
    truth = partitura.load_match(str(vienna["match"]))[1]
    for label in ("match", "deletion", "insertion"):
        assert ours[f"{label}_f"] == pytest.approx(parangonar.fscore_alignments(predicted, truth, label)[2])


REFERENCE_MATCH = """info(matchFileVersion,1.0.0).
info(midiClockUnits,480).
info(midiClockRate,500000).
scoreprop(timeSignature,4/4,0:1,0,0.0000).
snote(a,[C,n],4,1:1,0,1/4,0.0000,1.0000,[v1])-note(n0,60,0,400,64,0,0).
snote(b,[E,n],4,1:2,0,1/4,1.0000,2.0000,[v1])-note(n1,64,480,880,64,0,0).
snote(c,[G,n],4,1:3,0,1/4,2.0000,3.0000,[v1])-note(n2,67,960,1360,64,0,0).
snote(d,[C,n],5,1:4,0,1/4,3.0000,4.0000,[v1])-note(n3,72,1440,1840,64,0,0).
snote(e,[D,n],5,2:1,0,1/4,4.0000,5.0000,[v1])-deletion.
insertion-note(n4,61,1920,2300,64,0,0).
"""


def test_note_alignment_f_measure_hand_computed(tmp_path):
    reference = tmp_path / "ref.match"
    reference.write_text(REFERENCE_MATCH)
    estimate = tmp_path / "est.notes.csv"
    # a, b right; c paired with the inserted note (wrong); d left out (wrong deletion); e right deletion;
    # performance notes 67 and 72 (onsets 1.0, 1.5 s) then extra.
    estimate.write_text("score_id,pitch,score_onset_beats,score_onset_s,perf_onset_s,perf_offset_s,perf_velocity,"
                        "status\n"
                        "a,60,0,0,0.000,0.4,64,match\nb,64,1,0.5,0.502,0.9,64,match\nc,67,2,1,2.0,2.3,64,match\n"
                        "d,72,3,1.5,,,,deletion\ne,74,4,2,,,,deletion\n"
                        ",67,,,1.0,1.4,64,insertion\n,72,,,1.5,1.9,64,insertion\n")
    scored = metrics.note_alignment_scores(read_reference(estimate), read_reference(reference))
    # matches: 3 estimated, 4 true, 2 right -> P 2/3, R 1/2, F 4/7
    assert (scored["match_precision"], scored["match_recall"]) == pytest.approx((2 / 3, 1 / 2))
    assert scored["match_f"] == pytest.approx(4 / 7)
    # deletions: {d, e} vs {e} -> P 1/2, R 1, F 2/3; insertions: {67@1.0, 72@1.5} vs {61@2.0} -> F 0
    assert scored["deletion_f"] == pytest.approx(2 / 3)
    assert scored["insertion_f"] == 0.0
    assert scored["score_notes"] == 5


def test_reference_csv_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("score_id,pitch,score_onset_beats,score_onset_s,perf_onset_s,perf_offset_s,perf_velocity,status\n"
                   "a,60,0,0,0.1,0.2,64,played\n")
    with pytest.raises(MaestroError, match="line 2: status must be"):
        read_reference(bad)


@pytest.mark.slow
def test_parangonar_backend(vienna, tmp_path):
    assert "parangonar" in get_registry("aligner").names()
    out = tmp_path / "p.notes.csv"
    result = run_maestro("align", str(vienna["perf"]), "--score", str(vienna["score"]), "-b", "parangonar",
                         "--format", "notes", "-o", str(out))
    assert result.code == 0, result.stderr
    scored = metrics.note_alignment_scores(read_reference(out), read_reference(vienna["match"]))
    assert scored["match_f"] > 0.99
    csv_map = tmp_path / "p.csv"
    assert run_maestro("align", str(vienna["perf"]), "--score", str(vienna["score"]), "-b", "parangonar",
                       "-o", str(csv_map)).code == 0
    assert json.loads(csv_map.with_suffix(".meta.json").read_text())["backend"] == "parangonar"


@pytest.mark.parametrize("repeats_played", [True, False])
def test_synctoolbox_reads_musicxml_through_the_stage(xml_score, tmp_path, repeats_played):
    if "synctoolbox" not in get_registry("aligner").names():
        pytest.skip("synctoolbox not installed")
    variant = scores.read_score(xml_score, unfold=repeats_played)
    perf = performance_of(variant, tmp_path / "perf.mid")
    result = get_backend("aligner", "synctoolbox").create([]).align(perf, xml_score, kind="midi")
    assert result.info["score_format"] == "musicxml" and result.score.format == "musicxml"
    assert result.info["score_variant"] == ("unfolded" if repeats_played else "plain")
    assert result.notes.counts() == {"matched_notes": len(variant.notes), "deleted_notes": 0, "inserted_notes": 0}
    mapped = metrics.map_times(variant.notes["start_s"], np.asarray(result.score_times),
                               np.asarray(result.performance_times))
    expected = 0.7 + 1.15 * variant.notes["start_s"]
    assert np.percentile(np.abs(mapped - expected), 90) < 0.05


def test_synctoolbox_rejects_a_non_score_in_one_line(tmp_path):
    if "synctoolbox" not in get_registry("aligner").names():
        pytest.skip("synctoolbox not installed")
    perf = write_midi(tmp_path / "perf.mid", [(60, 0.0, 0.5, 70), (64, 0.5, 1.0, 70)])
    bad = tmp_path / "notes.txt"
    bad.write_text("not a score\n")
    result = run_maestro("align", str(perf), "--score", str(bad), "-b", "synctoolbox")
    assert result.code == 1 and result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith(f"error: {bad}: not a score")


DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(("name", "fmt", "count", "bar2_s"), [
    ("tiny.krn", "kern", 16, 3 * 60 / 96),  # 3/4 at *MM96; a chord in one spine
    ("tiny.mei", "mei", 15, 2.0),  # 4/4, no tempo: 120 qpm; a tie (<tie startid endid>) merged, key of G
])
def test_kern_and_mei_scores_align_every_note(name, fmt, count, bar2_s, tmp_path):
    """Hand-written three-bar scores (tests/data), read by content under a misleading suffix, played 15 %
    slower with timing noise as MIDI: every note matched, the notes CSV lists each score note once."""
    source = tmp_path / "score.txt"
    source.write_bytes((DATA / name).read_bytes())
    score = scores.read_score(source)
    notes = score.notes
    assert score.format == fmt and len(notes) == count and len(set(notes["id"])) == count
    assert notes["start_s"][notes["measure"] == 2].min() == pytest.approx(bar2_s)
    if fmt == "mei":
        assert 78 in notes["pitch"] and 77 not in notes["pitch"]  # F sharp from the key signature
        assert notes["duration_quarters"][notes["id"] == "a7"][0] == pytest.approx(3.0)  # half tied to quarter
    perf = performance_of(score, tmp_path / "perf.mid")
    result = get_backend("aligner", "dtw").create([]).align(perf, source, kind="midi")
    assert result.info["score_format"] == fmt
    assert result.notes.counts() == {"matched_notes": count, "deleted_notes": 0, "inserted_notes": 0}
    rows = result.notes.rows()
    assert sorted(row[0] for row in rows) == sorted(notes["id"]) and {row[-1] for row in rows} == {"match"}


def test_a_score_is_parsed_once_per_version(tmp_path):
    """A batch aligns many performances to one score: it is parsed once, each reader gets its own notes, and an
    edited file is read again."""
    source = tmp_path / "score.krn"
    source.write_bytes((DATA / "tiny.krn").read_bytes())
    first = scores.read_score(source)
    first.notes["pitch"] = 0
    again = scores.read_score(source)
    assert again.part is first.part and len(again.notes) == 16 and again.notes["pitch"].min() > 0
    source.write_text(source.read_text().replace("4GG\t4g", "4GG\t4aa"))
    edited = scores.read_score(source)
    assert edited.part is not first.part
    assert 81 in edited.notes["pitch"] and 81 not in again.notes["pitch"]


def _score_notes(rows) -> np.ndarray:
    """SCORE_DTYPE notes from (pitch, start_s, grace) rows, in the order scores are sorted."""
    notes = np.zeros(len(rows), scores.SCORE_DTYPE)
    for k, (pitch, start, grace) in enumerate(rows):
        notes[k] = (f"n{k}", pitch, start, 0.5, start, 0.5, start, start + 0.3, 1, grace, 64)
    return notes[np.lexsort((notes["pitch"], notes["start_s"]))]


def test_repeated_chords_are_counted_not_slid():
    """Seven identical octaves then two other chords (Chopin Op. 38's opening), and a coarse map that slid by
    one repetition: the order step puts every repetition on its own; matching by time alone cannot."""
    from maestro_cli.align import note_matching
    from maestro_cli.symbolic.notes import make_notes

    onsets = [0.0, 0.4, 1.2, 1.6, 2.4, 2.8, 3.6]
    rows = [(p, t, False) for t in onsets for p in (60, 72)] + [(p, 4.0, False) for p in (53, 60, 69, 72)]
    rows += [(p, 4.8, False) for p in (53, 60, 70, 72)]
    score = _score_notes(rows)
    played = make_notes(score["pitch"], 1.1 * score["start_s"], 1.1 * score["start_s"] + 0.2, np.full(len(score), 60))
    slid_s = np.array([0.0, 0.4, 3.6, 4.0, 4.8])  # the octaves at 0.4-2.8 all land one repetition late
    slid_p = np.array([0.0, 1.1 * 1.2, 1.1 * 3.6 + 0.1, 1.1 * 4.0, 1.1 * 4.8])
    for band, expected in ((0.0, False), (note_matching.ORDER_BAND, True)):
        _, _, matching = note_matching.refine(score, played, slid_s, slid_p, band=band)
        right = np.array_equal(matching.score_index, matching.performance_index) and matching.matches == len(score)
        assert right == expected, band


def test_grace_note_takes_the_earlier_key_stroke():
    """A grace note on the main note's pitch and time is played first; an arpeggiated grace chord starting far
    before its main note is still found (between the previous onset and the main note)."""
    from maestro_cli.align import note_matching
    from maestro_cli.symbolic.notes import make_notes

    score = _score_notes([(60, 0.0, False), (73, 1.0, False), (73, 1.0, True), (41, 3.0, True), (48, 3.0, True),
                          (69, 3.0, False), (60, 4.0, False)])
    played = make_notes(np.array([60, 73, 73, 41, 48, 69, 60]), np.array([0.0, 0.98, 1.1, 1.6, 2.2, 3.0, 4.0]),
                        np.array([0.3, 1.0, 1.4, 3.0, 3.0, 3.3, 4.3]), np.full(7, 60))
    s, p = np.array([0.0, 4.0]), np.array([0.0, 4.0])
    _, _, matching = note_matching.refine(score, played, s, p, band=note_matching.ORDER_BAND)
    pairs = sorted((float(score["start_s"][a]), int(score["pitch"][a]), bool(score["grace"][a]),
                    float(played["start_s"][b])) for a, b in zip(matching.score_index, matching.performance_index))
    assert pairs == [(0.0, 60, False, 0.0), (1.0, 73, False, 1.1), (1.0, 73, True, 0.98), (3.0, 41, True, 1.6),
                     (3.0, 48, True, 2.2), (3.0, 69, False, 3.0), (4.0, 60, False, 4.0)]


def _stretched_end(source: Path, target: Path, factor: float, share: float):
    """``source`` with its last ``share`` of the time from first to last onset played ``factor`` times slower
    (notes, pedals, tempo events), written to ``target``; returns the time warp."""
    import symusic

    midi = symusic.Score(str(source), ttype="second")
    onsets = [note.time for track in midi.tracks for note in track.notes]
    start = min(onsets) + (1 - share) * (max(onsets) - min(onsets))

    def warp(t: float) -> float:
        return start + factor * (t - start) if t > start else t

    for track in midi.tracks:
        for note in track.notes:
            begin, end = warp(note.time), warp(note.end)
            note.time, note.duration = begin, end - begin
        for control in track.controls:
            control.time = warp(control.time)
    for tempo in midi.tempos[1:]:
        tempo.time = warp(tempo.time)
    midi.dump_midi(str(target))
    return warp


@pytest.mark.slow
def test_repeated_figures_hold_under_a_final_ritardando(shared_data, tmp_path):
    """Every Vienna 4x22 performance with its last quarter played 2.5x slower (Chopin Op. 38 ends on five
    alternations of the same two chords and five repeated A's) keeps match F >= 0.99 against its match file."""
    from maestro_cli.align.notes import Reference, format_csv

    root = shared_data / "vienna4x22"
    aligner = get_backend("aligner", "dtw").create()
    scored = {}
    for match in sorted((root / "match").glob("*.match")):
        perf = tmp_path / f"{match.stem}.mid"
        warp = _stretched_end(root / "midi" / f"{match.stem}.mid", perf, 2.5, 0.25)
        reference = Reference([(label, score_id, None if note is None else (note[0], warp(note[1])))
                               for label, score_id, note in read_reference(match).items])
        result = aligner.align(perf, root / "musicxml" / f"{match.stem.rsplit('_', 1)[0]}.musicxml", kind="midi")
        estimate = tmp_path / f"{match.stem}.notes.csv"
        estimate.write_text(format_csv(result.notes))
        scored[match.stem] = metrics.note_alignment_scores(read_reference(estimate), reference)["match_f"]
    assert len(scored) == 8
    assert min(scored.values()) >= 0.99, scored
