"""The transkun transcriber (plugin maestro-transkun) with the real packaged Transkun v2 weights, on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from helpers import run_maestro

from maestro_cli.audio.io import load_audio
from maestro_cli.metrics.transcription import evaluate_notes, read_sustain
from maestro_cli.symbolic.midi import read_notes, write_midi

pytest.importorskip("maestro_transkun")
pytest.importorskip("transkun")

from maestro_transkun import _torchaudio_shim, melscale_fbanks, packaged_files  # noqa: E402

MAPS = "MAPS_MUS-chpn-p14_ENSTDkAm"
SECONDS = 8.0


def cut_notes_at(notes: np.ndarray, seconds: float) -> np.ndarray:
    """Notes starting before ``seconds``, offsets clipped there."""
    notes = notes[notes["start_s"] < seconds]
    notes["end_s"] = np.minimum(notes["end_s"], seconds)
    return notes


@pytest.fixture(scope="module")
def excerpt(tmp_path_factory, shared_data):
    """The first 8 s of a real, pedalled MAPS Disklavier recording, its TSV notes and an A-MAPS MIDI reference
    with notes and the sustain pedal cut at 8 s."""
    folder = tmp_path_factory.mktemp("transkun")
    maps = shared_data / "maps-disklavier"
    clip = folder / f"{MAPS}.flac"
    soundfile.write(clip, load_audio(maps / "flac" / f"{MAPS}.flac", 16000)[:int(SECONDS * 16000)], 16000)
    midi = next((maps / "a-maps").glob("R_*_A_MAPS_chpn-p14_ENSTDkAm.mid"))
    pedal = read_sustain(midi)
    pedal = pedal[pedal[:, 0] < SECONDS].clip(max=SECONDS)
    ref_midi = folder / "ref.mid"
    write_midi(cut_notes_at(read_notes(midi, sustain=False), SECONDS), ref_midi,
               controls=[(t, 64, v) for start, end in pedal for t, v in ((start, 127), (end, 0))])
    return clip, cut_notes_at(read_notes(maps / "tsv" / f"{MAPS}.tsv"), SECONDS), ref_midi


@pytest.fixture(scope="module")
def transcribed(excerpt):
    """``maestro transcribe`` with no --backend (transkun is the default) in one 16 s window."""
    clip, _, _ = excerpt
    out = clip.with_suffix(".mid")
    result = run_maestro("transcribe", str(clip), "-o", str(out), "-O", "hop_seconds=16", "--notes-csv",
                         env={"OMP_NUM_THREADS": "2"}, timeout=600)
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == str(out)
    return out


@pytest.mark.slow
def test_notes_match_ground_truth(transcribed, excerpt):
    scores = evaluate_notes(excerpt[1], read_notes(transcribed))
    assert scores["note_f1"] >= 0.9, scores  # measured 0.948 (CPU, 2 threads)
    assert read_notes(transcribed.with_suffix(".notes.csv")).shape == read_notes(transcribed, sustain=False).shape


@pytest.mark.slow
def test_sustain_pedal_written_and_scored(transcribed, excerpt):
    spans = read_sustain(transcribed)
    assert spans is not None and len(spans) >= 6  # the reference has 10 pedal-downs in these 8 s
    result = run_maestro("evaluate", "transcription", "--ref", str(excerpt[2]), "--est", str(transcribed), "--json")
    assert result.code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["n_ref_pedal"] == 10
    assert row["pedal_f1"] >= 0.8 and row["pedal_onset_f1"] >= 0.8, row  # measured 0.947 (9 of 10 found)
    assert row["note_f1"] >= 0.9, row


def test_view_draws_transcription(transcribed, tmp_path):
    result = run_maestro("view", str(transcribed), "-o", str(tmp_path / "roll.png"))
    assert result.code == 0, result.stderr
    assert (tmp_path / "roll.png").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"not a checkpoint at all", "not a readable transkun checkpoint"),
])
def test_bad_checkpoint_is_one_line_error(excerpt, tmp_path, content, message):
    checkpoint = tmp_path / "model.pt"
    if content is not None:
        checkpoint.write_bytes(content)
    result = run_maestro("transcribe", str(excerpt[0]), "-b", "transkun", "-O", f"checkpoint={checkpoint}",
                         "--out-dir", str(tmp_path))
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: {checkpoint}: {message}"), result.stderr
    assert len([line for line in lines if line.startswith("error:")]) == 1
    assert not list(tmp_path.glob("*.mid"))


def test_shim_gives_the_stored_filterbank():
    """The torchaudio stand-in computes exactly the mel filterbank stored in the checkpoint, and is removed after."""
    import torch

    weights, conf = packaged_files()
    stored = torch.load(str(weights), map_location="cpu", weights_only=True)["state_dict"][
        "framewiseFeatureExtractor.freq2mels"]
    config = json.loads(conf.read_text())["Model"]["config"]
    ours = melscale_fbanks(config["windowSize"] // 2 + 1, config["f_min"], config["f_max"], config["n_mels"],
                           config["fs"])
    assert ours.shape == stored.shape == (2049, 229)
    assert torch.allclose(ours, stored, atol=1e-6)
    with _torchaudio_shim():
        import torchaudio

        assert torchaudio.functional.melscale_fbanks is melscale_fbanks
    assert "torchaudio" not in sys.modules


def default_transcriber(env: dict[str, str]) -> str:
    code = "from maestro_cli.registry import get_backend; print(get_backend('transcriber').name)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=env).stdout.strip()


def test_listed_default_and_disable():
    result = run_maestro("plugins", "--json")
    records = {record["name"]: record for record in map(json.loads, result.stdout.splitlines())}
    assert records["maestro-transkun"]["backends"] == {"transcriber": ["transkun"]}
    assert records["maestro-transkun"]["defaults"] == {"transcriber": "transkun"}
    env = {key: value for key, value in os.environ.items() if key != "MAESTRO_DISABLE_PLUGINS"}
    assert default_transcriber(env) == "transkun"
    assert default_transcriber({**env, "MAESTRO_DISABLE_PLUGINS": "maestro-transkun"}) == "onsets-frames"
    disabled = run_maestro("plugins", "--json", env={"MAESTRO_DISABLE_PLUGINS": "maestro-transkun"})
    assert "maestro-transkun" not in disabled.stdout


def test_options_are_validated(excerpt):
    result = run_maestro("transcribe", str(excerpt[0]), "-b", "transkun", "-O", "hop_seconds=20")
    assert result.code == 2
    assert "hop_seconds must be > 0 and at most segment_seconds" in result.stderr
    from maestro_cli.errors import UsageError
    from maestro_cli.registry import create_backend

    with pytest.raises(UsageError, match="candidate_floor must be > 0 and at most 1"):
        create_backend("transcriber", "transkun", ["candidate_floor=0"])


@pytest.mark.slow
def test_candidates_hold_the_transcription_and_more(transcribed, excerpt, tmp_path):
    """The semi-CRF's candidates (for transcribe --score): the decided notes, confident, and notes it left out."""
    from maestro_cli.registry import create_backend

    transcriber = create_backend("transcriber", "transkun", ["hop_seconds=16", "threads=1"])
    found, confidence = transcriber.transcribe_candidates(excerpt[0], tmp_path / "t.mid")
    decided = read_notes(tmp_path / "t.mid", sustain=False)
    assert evaluate_notes(read_notes(transcribed, sustain=False), decided)["note_f1"] >= 0.99  # as transcribe writes
    assert len(found) == len(confidence) > len(decided) and np.all((confidence >= 0.05) & (confidence <= 1))
    sure = [np.max(confidence[(found["pitch"] == note["pitch"]) & (np.abs(found["start_s"] - note["start_s"]) <= 0.05)],
                   initial=0.0) for note in decided]
    assert np.median(sure) > 0.95 and np.mean(np.asarray(sure) >= 0.5) > 0.95, sure
    ref = excerpt[1]
    assert evaluate_notes(ref, found)["note_recall"] >= evaluate_notes(ref, decided)["note_recall"]
