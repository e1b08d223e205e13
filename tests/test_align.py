"""align: both backends on rendered audio with a known tempo curve, symbolic route with wrong/missing notes,
confidence on mismatched pieces, output formats, alignment metrics, and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import run_maestro, write_midi

from maestro_cli.align.io import detect_kind, read_alignment, sidecar_path, write_alignment
from maestro_cli.errors import MaestroError
from maestro_cli.metrics import alignment as metrics
from maestro_cli.protocols import Alignment
from maestro_cli.registry import get_backend

SECONDS = 24.0
HALF = SECONDS / 2
LEAD = 0.5


def make_piece(seed: int, scale=(0, 2, 4, 5, 7, 9, 11), root: int = 60) -> list[tuple[int, float, float, int]]:
    """A melody with a bass line: (pitch, start, end, velocity)."""
    rng = np.random.default_rng(seed)
    notes, time = [], 0.0
    while time < SECONDS:
        duration = float(rng.choice([0.25, 0.5, 0.5, 0.75]))
        notes.append((root + scale[rng.integers(7)] + 12 * int(rng.integers(-1, 2)), time, time + duration,
                      int(rng.integers(60, 100))))
        if rng.random() < 0.5:
            notes.append((root - 24 + scale[rng.integers(7)], time, time + 2 * duration, int(rng.integers(45, 80))))
        time += duration
    return notes


def warp(t):
    """The performance's tempo curve: as written for the first half, then 1.2x slower, after a lead-in."""
    t = np.asarray(t, dtype=float)
    return LEAD + np.where(t < HALF, t, HALF + 1.2 * (t - HALF))


def warped(notes):
    return [(p, float(warp(s)), float(warp(e)), v) for p, s, e, v in notes]


def onset_errors(alignment: Alignment, notes) -> np.ndarray:
    onsets = np.unique([start for _, start, _, _ in notes])
    mapped = metrics.map_times(onsets, np.asarray(alignment.score_times), np.asarray(alignment.performance_times))
    return np.abs(mapped - warp(onsets))


@pytest.fixture(scope="module")
def piece(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("align")
    notes = make_piece(1)
    score = write_midi(folder / "score.mid", notes)
    perf_midi = write_midi(folder / "perf.mid", warped(notes))
    wav = folder / "perf.wav"
    get_backend("renderer", "soundfont").create(["channels=1"]).render(
        perf_midi, wav, sample_rate=22050, audio_format="wav", soundfont=None)
    other = write_midi(folder / "other.mid", make_piece(7, scale=(0, 1, 3, 6, 8, 10, 11), root=54))
    return {"folder": folder, "notes": notes, "score": score, "perf_midi": perf_midi, "wav": wav, "other": other}


def installed_aligners() -> list[str]:
    from maestro_cli.registry import get_registry

    return get_registry("aligner").names()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["dtw", "synctoolbox"])
def test_rendered_tempo_curve_aligned_within_50ms(piece, backend):
    if backend not in installed_aligners():
        pytest.skip(f"{backend} not installed")
    result = get_backend("aligner", backend).create().align(piece["wav"], piece["score"], kind="audio")
    assert np.all(np.diff(result.score_times) > 0) and np.all(np.diff(result.performance_times) > 0)
    errors = onset_errors(result, piece["notes"])
    assert np.mean(errors <= 0.05) >= 0.95, f"{backend}: {np.mean(errors <= 0.05):.1%} within 50 ms"
    assert result.info["backend"] == backend and result.info["feature_rate"] == 50
    assert 0.4 < result.info["confidence"] <= 1.0


@pytest.mark.slow
def test_trailing_noise_does_not_drag_the_path(piece, tmp_path):
    import soundfile

    audio, rate = soundfile.read(str(piece["wav"]), dtype="float32")
    rng = np.random.default_rng(3)
    tail = np.zeros(6 * rate, np.float32)
    for start in rng.integers(0, len(tail) - 2000, 300):  # applause-like bursts of noise
        tail[start:start + 2000] += 0.2 * rng.standard_normal(2000) * np.exp(-np.arange(2000) / 300)
    noisy = tmp_path / "noisy.wav"
    soundfile.write(str(noisy), np.concatenate([audio, tail]), rate)
    result = get_backend("aligner", "dtw").create().align(noisy, piece["score"], kind="audio")
    errors = onset_errors(result, piece["notes"])
    assert np.mean(errors <= 0.05) >= 0.95
    assert np.all(errors[-5:] <= 0.05)  # the last notes stay in place
    last_end = max(end for _, _, end, _ in piece["notes"])
    assert result.performance_times[-1] < warp(last_end) + 0.5  # the score's end is not pushed into the noise


def test_midi_performance_with_deleted_and_wrong_notes(piece, tmp_path):
    rng = np.random.default_rng(5)
    performed = warped(piece["notes"])
    order = rng.permutation(len(performed))
    deleted = set(order[: len(performed) // 10])
    wrong = set(order[len(performed) // 10: len(performed) // 5])
    notes = []
    for index, (pitch, start, end, velocity) in enumerate(performed):
        if index in deleted:
            continue
        if index in wrong:
            pitch += int(rng.choice([-2, -1, 1, 2]))
        jitter = float(rng.normal(0, 0.01))
        notes.append((pitch, start + jitter, end + jitter, velocity))
    perf = write_midi(tmp_path / "sloppy.mid", notes)
    result = get_backend("aligner", "dtw").create().align(perf, piece["score"], kind="midi")
    errors = onset_errors(result, piece["notes"])
    assert np.mean(errors <= 0.05) >= 0.9
    info = result.info
    assert info["matched_notes"] >= 0.75 * len(piece["notes"])
    assert info["deleted_notes"] >= len(deleted)  # wrong notes are a deletion plus an insertion
    assert info["inserted_notes"] >= len(wrong) * 0.8


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["dtw", "synctoolbox"])
def test_mismatched_piece_gives_lower_confidence(piece, backend):
    if backend not in installed_aligners():
        pytest.skip(f"{backend} not installed")
    aligner = get_backend("aligner", backend).create()
    right = aligner.align(piece["wav"], piece["score"], kind="audio").info["confidence"]
    wrong = aligner.align(piece["wav"], piece["other"], kind="audio").info["confidence"]
    assert wrong < right - 0.15, (right, wrong)


def test_mismatched_midi_piece_gives_low_confidence(piece):
    aligner = get_backend("aligner", "dtw").create()
    right = aligner.align(piece["perf_midi"], piece["score"], kind="midi").info["confidence"]
    wrong = aligner.align(piece["perf_midi"], piece["other"], kind="midi").info["confidence"]
    assert right > 0.95 and wrong < 0.5


# ------------------------------------------------------------------------------------------------ formats


def _alignment() -> Alignment:
    s = np.array([0.0, 1.0, 2.0, 3.5])
    return Alignment(s, np.array([0.5, 1.6, 2.9, 4.4]), {"backend": "test", "feature_rate": 50,
                                                         "confidence": 0.9, "cost": 0.1})


def test_csv_and_sidecar_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = write_alignment(_alignment(), Path("rec.wav"), Path("s.mid"))
    assert target == tmp_path / "rec.aligned.csv"
    assert target.read_text().splitlines()[0] == "score_time_s,performance_time_s"
    s, p, info = read_alignment(target)
    np.testing.assert_allclose(s, _alignment().score_times, atol=1e-6)
    np.testing.assert_allclose(p, _alignment().performance_times, atol=1e-6)
    assert info["backend"] == "test" and info["confidence"] == 0.9 and info["points"] == 4
    assert json.loads(sidecar_path(target).read_text())["score"] == "s.mid"
    with pytest.raises(MaestroError, match="exists"):
        write_alignment(_alignment(), Path("rec.wav"), Path("s.mid"))
    write_alignment(_alignment(), Path("rec.wav"), Path("s.mid"), overwrite=True)


def test_json_round_trip(tmp_path):
    target = write_alignment(_alignment(), Path("rec.wav"), Path("s.mid"), "json", tmp_path / "a.json")
    s, p, info = read_alignment(target)
    np.testing.assert_allclose(p, _alignment().performance_times)
    assert info["feature_rate"] == 50


def test_midi_format_is_the_score_retimed(tmp_path):
    import pretty_midi

    score = write_midi(tmp_path / "s.mid", [(60, 0.0, 0.5, 80), (64, 1.0, 1.5, 80), (67, 2.0, 3.0, 80),
                                            (72, 3.5, 4.0, 80)])
    target = write_alignment(_alignment(), Path("rec.wav"), score, "midi", tmp_path / "retimed.mid")
    notes = pretty_midi.PrettyMIDI(str(target)).instruments[0].notes
    np.testing.assert_allclose([n.start for n in notes], [0.5, 1.6, 2.9, 4.4], atol=0.005)
    # beyond the map the last segment's tempo goes on: (4.4 - 2.9) / (3.5 - 2.0) = 1.0
    assert notes[-1].end == pytest.approx(4.4 + 0.5 * 1.0, abs=0.01)


def test_unsorted_alignment_is_rejected(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("score_time_s,performance_time_s\n0,0\n1,2\n2,1.5\n")
    with pytest.raises(MaestroError, match="strictly increasing"):
        read_alignment(bad)


def test_detect_kind_by_content(piece, tmp_path):
    disguised = tmp_path / "performance.wav"
    shutil.copy(piece["perf_midi"], disguised)
    assert detect_kind(disguised) == "midi"
    assert detect_kind(piece["wav"]) == "audio"
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MaestroError, match="neither audio"):
        detect_kind(tmp_path / "notes.txt")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(MaestroError, match="empty"):
        detect_kind(tmp_path / "empty.wav")


# ------------------------------------------------------------------------------------------------ metrics


def test_metrics_hand_computed():
    # estimate: performance = 0.02 + 1.06 * score, so errors at score 0, 1, 2, 3 are 20, 80, 140, 200 ms
    errors = metrics.alignment_errors([0, 1, 2, 3], [0, 1, 2, 3], np.array([0.0, 10.0]), np.array([0.02, 10.62]))
    np.testing.assert_allclose(errors, [0.02, 0.08, 0.14, 0.20])
    summary = metrics.summarize(errors)
    assert summary["points"] == 4
    assert summary["mean_ms"] == pytest.approx(110.0)
    assert summary["median_ms"] == pytest.approx(110.0)
    assert summary["p90_ms"] == pytest.approx(182.0)
    assert (summary["within_25ms"], summary["within_50ms"], summary["within_100ms"], summary["within_200ms"]) == \
        (25.0, 25.0, 50.0, 100.0)


def test_metrics_extrapolate_with_local_tempo():
    mapped = metrics.map_times(np.array([-1.0, 5.0]), np.array([0.0, 1.0, 2.0]), np.array([10.0, 12.0, 13.0]))
    np.testing.assert_allclose(mapped, [8.0, 16.0])


def test_asap_annotation_pair(tmp_path):
    (tmp_path / "score.txt").write_text("0.0\t0.0\tdb,4/4,0\n0.5\t0.5\tb\n1.0\t1.0\tb\n")
    (tmp_path / "perf.txt").write_text("2.0\t2.0\tdb,4/4,0\n2.7\t2.7\tb\n3.3\t3.3\tb\n")
    s, p = metrics.load_reference([tmp_path / "score.txt", tmp_path / "perf.txt"])
    np.testing.assert_allclose(s, [0, 0.5, 1.0])
    np.testing.assert_allclose(p, [2.0, 2.7, 3.3])
    (tmp_path / "short.txt").write_text("2.0\t2.0\tdb\n")
    with pytest.raises(MaestroError, match="same beats"):
        metrics.load_reference([tmp_path / "score.txt", tmp_path / "short.txt"])


# ------------------------------------------------------------------------------------------------ CLI


@pytest.mark.slow
def test_cli_align_midi_from_stdin_and_evaluate(piece, tmp_path):
    result = run_maestro("align", "--score", str(piece["score"]), stdin=f"{piece['perf_midi']}\n", cwd=tmp_path)
    assert result.code == 0, result.stderr
    target = Path(result.stdout.strip())
    assert target == tmp_path / "perf.aligned.csv" and sidecar_path(target).is_file()
    # reference: the true map at every score onset
    onsets = np.unique([start for _, start, _, _ in piece["notes"]])
    ref = tmp_path / "ref.csv"
    ref.write_text("score_time_s,performance_time_s\n" + "".join(f"{s},{warp(s)}\n" for s in onsets))
    evaluation = run_maestro("evaluate", "alignment", "--ref", str(ref), "--est", str(target), "--json",
                             "--plot", str(tmp_path / "errors.png"))
    assert evaluation.code == 0, evaluation.stderr
    record = json.loads(evaluation.stdout)
    assert record["points"] == len(onsets) and record["within_50ms"] >= 95
    assert (tmp_path / "errors.png").stat().st_size > 1000
    again = run_maestro("align", str(piece["perf_midi"]), "--score", str(piece["score"]), cwd=tmp_path)
    assert again.code == 1 and "exists" in again.stderr


@pytest.mark.slow
def test_cli_formats_and_options(piece, tmp_path):
    out = tmp_path / "x.mid"
    result = run_maestro("align", str(piece["perf_midi"]), "--score", str(piece["score"]), "--format", "midi",
                         "-o", str(out), "-O", "alpha=0.7", "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["path"] == str(out) and detect_kind(out) == "midi"
    bad = run_maestro("align", str(piece["perf_midi"]), "--score", str(piece["score"]), "--format", "xml")
    assert bad.code == 2
    unknown = run_maestro("align", str(piece["perf_midi"]), "--score", str(piece["score"]), "-O", "nope=1")
    assert unknown.code == 2 and "alpha" in unknown.stderr


def test_cli_bad_inputs(piece, tmp_path):
    silent = tmp_path / "silent.wav"
    import soundfile

    soundfile.write(str(silent), np.zeros(22050, np.float32), 22050)
    result = run_maestro("align", str(silent), "--score", str(piece["score"]), cwd=tmp_path)
    assert result.code == 1 and "silent" in result.stderr and "Traceback" not in result.stderr
    empty_score = write_midi(tmp_path / "empty.mid", [])
    result = run_maestro("align", str(piece["perf_midi"]), "--score", str(empty_score), cwd=tmp_path)
    assert result.code == 1 and "no notes" in result.stderr
    (tmp_path / "empty.wav").write_bytes(b"")
    result = run_maestro("align", str(tmp_path / "empty.wav"), "--score", str(piece["score"]), cwd=tmp_path)
    assert result.code == 1 and "empty" in result.stderr


@pytest.mark.slow
def test_pipe_from_transcribe(piece, tmp_path):
    """``maestro transcribe rec.wav | maestro align --score s.mid``: the transcription is aligned symbolically."""
    import subprocess

    from helpers import MAESTRO

    from maestro_cli.registry import get_registry

    if "basic-pitch" not in get_registry("transcriber").names():
        pytest.skip("basic-pitch not installed")
    pipe = subprocess.run(f"'{MAESTRO}' transcribe '{piece['wav']}' -b basic-pitch | "
                          f"'{MAESTRO}' align --score '{piece['score']}' -o s.aligned.csv --json",
                          shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert pipe.returncode == 0, pipe.stderr
    assert json.loads(pipe.stdout)["path"] == "s.aligned.csv"
    s, p, info = read_alignment(tmp_path / "s.aligned.csv")
    assert info["kind"] == "midi" and info["performance"].endswith("perf.mid")
    errors = onset_errors(Alignment(s, p, info), piece["notes"])
    assert np.mean(errors <= 0.05) >= 0.9


# ------------------------------------------------------------------------------------- refined by note onsets


@pytest.fixture(scope="module")
def maps_excerpt(shared_data, tmp_path_factory) -> dict:
    """The first 8 s of a real Disklavier recording (MAPS, Chopin Prelude 14) and, as its score, its own notes
    (MAPS ground truth) re-timed by a known tempo curve: score time = warp(performance time)."""
    import soundfile

    folder = tmp_path_factory.mktemp("maps")
    name = "MAPS_MUS-chpn-p14_ENSTDkAm"
    audio, rate = soundfile.read(str(shared_data / "maps-disklavier" / "flac" / f"{name}.flac"), dtype="float32")
    wav = folder / "excerpt.wav"
    soundfile.write(str(wav), audio[: 8 * rate], rate)
    rows = np.loadtxt(shared_data / "maps-disklavier" / "tsv" / f"{name}.tsv", skiprows=1, ndmin=2)
    rows = rows[rows[:, 0] < 7.5]

    def warp(t):
        return 0.9 * np.asarray(t) + 0.25 * np.sin(2 * np.pi * np.asarray(t) / 8.0)  # slope 0.7..1.1

    notes = [(int(p), float(warp(on)), float(warp(min(off, 8.0))), int(v)) for on, off, p, v in rows]
    onsets = np.unique(rows[:, 0])
    return {"wav": wav, "score": write_midi(folder / "score.mid", notes), "ref_score": warp(onsets),
            "ref_perf": onsets}


@pytest.mark.slow
def test_refined_route_on_a_real_recording(maps_excerpt, tmp_path):
    """The align command refines the audio map by the transcriber's onsets: a strictly increasing map, close to the
    true note times, and the sidecar tells how many notes pinned it and where it fell back to the features."""
    out = tmp_path / "refined.csv"
    result = run_maestro("align", str(maps_excerpt["wav"]), "--score", str(maps_excerpt["score"]), "-o", str(out))
    assert result.code == 0, result.stderr
    s, p, info = read_alignment(out)  # also checks that both columns strictly increase
    assert info["refined"] is True and info["transcriber"] == "onsets-frames"
    from maestro_cli.symbolic.scores import read_score

    score_onsets = len(np.unique(np.round(read_score(maps_excerpt["score"]).notes["start_s"], 4)))
    assert 0 < info["pinned_onsets"] <= info["score_onsets"] == score_onsets
    assert info["pinned_notes"] >= info["pinned_onsets"]
    assert info["pinned_onsets"] >= 0.5 * info["score_onsets"]
    spans = np.asarray(info["fallback_spans_s"], float).reshape(-1, 2)
    assert np.all(spans[:, 1] > spans[:, 0]) and np.all(spans[:, 0] >= s[0] - 1e-6)
    errors = metrics.alignment_errors(maps_excerpt["ref_score"], maps_excerpt["ref_perf"], s, p)
    assert np.mean(errors <= 0.05) >= 0.9, np.mean(errors <= 0.05)


@pytest.mark.slow
def test_refine_false_keeps_the_feature_map(maps_excerpt):
    """``-O refine=false`` gives exactly the map of the features and DTW alone, even with a transcriber given."""
    from maestro_cli.align import dtw
    from maestro_cli.align import features as sync_features
    from maestro_cli.audio.io import load_audio
    from maestro_cli.symbolic.scores import read_score

    aligner = get_backend("aligner", "dtw").create(["refine=false"])
    aligner.transcriber = object()  # never called
    result = aligner.align(maps_excerpt["wav"], maps_excerpt["score"], kind="audio")
    assert result.info["refined"] is False and "pinned_notes" not in result.info
    performance = sync_features.audio_features(load_audio(maps_excerpt["wav"], sync_features.SAMPLE_RATE))
    score = sync_features.audio_features(sync_features.render_score(read_score(maps_excerpt["score"])))
    path = dtw.align_features(score, performance)
    frames_s, frames_p = dtw.strict_pairs(path.score_frames, path.performance_frames)
    np.testing.assert_array_equal(result.score_times, score.time(frames_s))
    np.testing.assert_array_equal(result.performance_times, performance.time(frames_p))


def test_onset_map_drops_a_stray_pin_and_falls_back_where_nothing_was_played():
    """Chords every 0.5 s played 1.2x slower; one transcribed chord 120 ms late (a single note), none for 6 s; the
    feature path 30 ms off everywhere. The map follows the played onsets, ignores the stray and follows the
    (shifted) feature path through the silent stretch, which the result names."""
    from maestro_cli.align.onset_map import onset_map
    from maestro_cli.symbolic.notes import make_notes
    from maestro_cli.symbolic.scores import SCORE_DTYPE

    times = np.arange(0.0, 20.0, 0.5)
    score = np.zeros(2 * len(times), SCORE_DTYPE)
    score["start_s"], score["pitch"] = np.repeat(times, 2), np.tile([48, 64], len(times)) + np.repeat(
        np.arange(len(times)) % 5, 2)
    score["end_s"] = score["start_s"] + 0.4
    truth = 1.2 * score["start_s"] + 0.5
    heard = (score["start_s"] < 8.0) | (score["start_s"] >= 14.0)
    stray = score["start_s"] == 3.0
    played = make_notes(score["pitch"][heard & ~(stray & (score["pitch"] < 60))],
                        (truth + 0.12 * stray)[heard & ~(stray & (score["pitch"] < 60))], 0.0, 64)
    played["end_s"] = played["start_s"] + 0.3
    feature_s = np.linspace(0.0, 20.0, 1001)
    refined = onset_map(score, played, feature_s, 1.2 * feature_s + 0.5 + 0.03)
    mapped = metrics.map_times(times, refined.score_times, refined.performance_times)
    assert np.all(np.diff(refined.score_times) > 0) and np.all(np.diff(refined.performance_times) > 0)
    assert np.max(np.abs(mapped - (1.2 * times + 0.5))) < 0.002  # the stray is not followed
    assert refined.pinned_onsets == len(times) - 12 - 1 and refined.score_onsets == len(times)
    assert [7.5, 14.0] in refined.info()["fallback_spans_s"]
