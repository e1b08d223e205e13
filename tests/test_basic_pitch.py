"""The basic-pitch transcriber (ONNX, no TensorFlow) and the `maestro transcribe` stage."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from helpers import run_maestro

from maestro_cli.audio.io import load_audio
from maestro_cli.metrics.transcription import evaluate_notes
from maestro_cli.symbolic.midi import read_notes
from maestro_cli.symbolic.notes import from_rows, to_rows

pytest.importorskip("maestro_basic_pitch")
pytest.importorskip("basic_pitch")

from maestro_basic_pitch import BasicPitchOptions, BasicPitchTranscriber  # noqa: E402

MAPS = "MAPS_MUS-chpn-p14_ENSTDkAm"


@pytest.fixture(scope="module")
def maps_clip(tmp_path_factory, shared_data):
    """The first 10 s of a real MAPS Disklavier recording, and its ground-truth notes cut to 10 s."""
    folder = tmp_path_factory.mktemp("maps")
    audio = load_audio(shared_data / "maps-disklavier" / "flac" / f"{MAPS}.flac", 16000)[:10 * 16000]
    clip = folder / f"{MAPS}.flac"
    soundfile.write(clip, audio, 16000)
    ref = read_notes(shared_data / "maps-disklavier" / "tsv" / f"{MAPS}.tsv")
    ref = ref[ref["start_s"] < 10.0]
    ref["end_s"] = np.minimum(ref["end_s"], 10.0)
    return clip, ref


@pytest.fixture(scope="module")
def transcriber():
    return BasicPitchTranscriber(BasicPitchOptions())


def synth_piano(notes: np.ndarray, sample_rate: int) -> np.ndarray:
    """Additive piano-like tones: 8 slightly inharmonic partials, fast attack, exponential decay, damped release."""
    audio = np.zeros(int((notes["end_s"].max() + 1.0) * sample_rate))
    for pitch, onset, offset, velocity in notes.tolist():
        held = int((offset - onset) * sample_rate)
        t = np.arange(held + int(0.3 * sample_rate)) / sample_rate
        envelope = np.exp(-3 * t) * np.minimum(1, t / 0.005)
        envelope[held:] *= np.exp(-30 * (t[held:] - t[held]))
        freq = 440.0 * 2 ** ((pitch - 69) / 12)
        tone = sum(0.6 ** (k - 1) * np.sin(2 * np.pi * freq * k * np.sqrt(1 + 4e-4 * k * k) * t)
                   for k in range(1, 9) if freq * k < sample_rate / 2)
        start = int(onset * sample_rate)
        audio[start:start + len(t)] += velocity / 127 * envelope * tone
    return 0.5 * audio / np.abs(audio).max()


def scale_and_chords() -> np.ndarray:
    notes, t = [], 0.2
    for pitch in (60, 62, 64, 65, 67, 69, 71, 72):
        notes.append((t, t + 0.4, pitch, 80))
        t += 0.5
    for chord in ((48, 52, 55), (53, 57, 60), (55, 59, 62, 67), (48, 55, 64, 72)):
        notes += [(t, t + 0.8, pitch, 90) for pitch in chord]
        t += 1.0
    return from_rows(notes)


def events_to_notes(events) -> np.ndarray:
    return from_rows([(on, off, pitch, amp * 127) for on, off, pitch, amp, _ in events])


@pytest.mark.slow
def test_real_piano_clip_reaches_f1_floor_through_the_cli(maps_clip, tmp_path):
    clip, ref = maps_clip
    result = run_maestro("transcribe", "--backend", "basic-pitch", "--out-dir", str(tmp_path), "--notes-csv",
                         "--json", stdin=f"{clip}\n")  # paths on stdin, as from a pipe
    assert result.code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record == {"path": str(tmp_path / f"{MAPS}.mid"), "notes_csv": str(tmp_path / f"{MAPS}.notes.csv")}
    from_midi, from_csv = read_notes(record["path"]), read_notes(record["notes_csv"])
    assert np.allclose(to_rows(from_midi)[:, [0, 2, 3]], to_rows(from_csv)[:, [0, 2, 3]], atol=2e-3)
    scores = evaluate_notes(ref, from_midi)
    assert scores["note_f1"] >= 0.70, scores  # measured 0.777 (basic-pitch's own defaults)
    assert scores["frame_f1"] >= 0.40, scores  # measured 0.475 (the TSV holds key releases, not pedal)


def test_synthetic_stereo_44k_tones(tmp_path, transcriber):
    notes = scale_and_chords()
    audio = synth_piano(notes, 44100)
    path = tmp_path / "tones.wav"
    soundfile.write(path, np.stack([audio, 0.8 * audio], axis=1), 44100)  # any rate and channel count in
    scores = evaluate_notes(notes, events_to_notes(transcriber.note_events(load_audio(path, 22050))))
    assert scores["note_f1"] >= 0.80, scores  # measured 0.88
    assert scores["note_recall"] >= 0.9, scores


def test_segmented_decoding_matches_a_single_pass(shared_data):
    audio = load_audio(shared_data / "maps-disklavier" / "flac" / f"{MAPS}.flac", 22050)[:16 * 22050]
    whole = events_to_notes(BasicPitchTranscriber(BasicPitchOptions(segment_seconds=60)).note_events(audio))
    pieces = events_to_notes(BasicPitchTranscriber(BasicPitchOptions(segment_seconds=10)).note_events(audio))
    scores = evaluate_notes(whole, pieces)  # a border at 9.8 s: no note cut, lost or doubled
    assert scores["note_offset_f1"] >= 0.98, scores
    assert abs(len(whole) - len(pieces)) <= 1


def test_thresholds_are_options(maps_clip):
    clip, _ = maps_clip
    audio = load_audio(clip, 22050)[:5 * 22050]
    strict = BasicPitchTranscriber(BasicPitchOptions(onset_threshold=0.8, frame_threshold=0.5,
                                                     melodia_trick=False)).note_events(audio)
    loose = BasicPitchTranscriber(BasicPitchOptions(onset_threshold=0.3)).note_events(audio)
    assert 0 < len(strict) < len(loose)
    high = BasicPitchTranscriber(BasicPitchOptions(minimum_frequency=261.6)).note_events(audio)
    assert high and min(pitch for _, _, pitch, _, _ in high) >= 60
    longer = BasicPitchTranscriber(BasicPitchOptions(minimum_note_length_ms=400)).note_events(audio)
    assert longer and min(off - on for on, off, *_ in longer) >= 0.39


def test_bad_options_are_usage_errors():
    result = run_maestro("transcribe", "x.wav", "--backend", "basic-pitch", "-O", "onset_threshold=2")
    assert result.code == 2 and "onset_threshold must be between 0 and 1" in result.stderr
    unknown = run_maestro("transcribe", "x.wav", "--backend", "basic-pitch", "-O", "treshold=0.4")
    assert unknown.code == 2 and "unknown option 'treshold'" in unknown.stderr and "frame_threshold" in unknown.stderr


@pytest.mark.slow
def test_bad_inputs_are_one_line_errors_and_the_batch_continues(tmp_path):
    silent, empty, text, midi, zero = (tmp_path / name for name in
                                       ("silent.wav", "empty.wav", "text.flac", "score.wav", "zero.wav"))
    soundfile.write(silent, np.zeros((8000, 2)), 8000)
    empty.write_bytes(b"")
    text.write_text("definitely not audio\n")
    midi.write_bytes(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0")
    soundfile.write(zero, np.zeros((0, 1)), 16000)
    good = tmp_path / "good.wav"
    soundfile.write(good, synth_piano(from_rows([[0.1, 0.6, 60, 90], [0.7, 1.2, 64, 90]]), 16000), 16000)
    missing = tmp_path / "missing.wav"
    out = tmp_path / "out"
    result = run_maestro("transcribe", str(silent), str(empty), str(text), str(good), str(midi), str(zero),
                         str(missing), "--backend", "basic-pitch", "--out-dir", str(out))
    assert result.code == 1
    assert result.stdout.splitlines() == [str(out / "good.mid")]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {silent}: audio is silent (peak at or below -80 dBFS)",
        f"error: {empty}: empty file (0 bytes)",
        f"error: {text}: not an audio file in a supported format (WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF)",
        f"error: {midi}: a MIDI file, not audio (readable audio: WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF)",
        f"error: {zero}: audio file holds no samples (zero length)",
        f"error: {missing}: no such file",
    ]
    assert "Traceback" not in result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["good.mid"]  # nothing half-written
    assert read_notes(out / "good.mid")["pitch"].tolist() == [60, 64]


@pytest.mark.slow
def test_tensorflow_is_never_imported(tmp_path):
    """A TensorFlow that records its import stands on the path: transcribing must not touch it."""
    fake = tmp_path / "site" / "tensorflow"
    fake.mkdir(parents=True)
    marker = tmp_path / "imported"
    (fake / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    clip = tmp_path / "tone.wav"
    soundfile.write(clip, synth_piano(from_rows([[0.1, 0.8, 57, 90]]), 22050), 22050)
    code = ("import sys; from pathlib import Path; from maestro_basic_pitch import *;"
            "t = BasicPitchTranscriber(BasicPitchOptions());"
            f"t.transcribe(Path({str(clip)!r}), Path({str(tmp_path / 'tone.mid')!r}));"
            "print(sorted(m for m in sys.modules"
            " if m.split('.')[0] in ('tensorflow', 'coremltools', 'tflite_runtime')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]" and not marker.exists()
    assert read_notes(tmp_path / "tone.mid")["pitch"].tolist() == [57]


def test_plugin_is_listed():
    result = run_maestro("plugins", "--json")
    assert result.code == 0, result.stderr
    assert "basic-pitch" in result.stdout
