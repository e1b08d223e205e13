"""maestro_cli.audio.io: decoding any rate/channel count, resampling, and one-line errors for bad files."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile

from maestro_cli.audio.io import load_audio, probe_audio
from maestro_cli.errors import MaestroError


def tone(sample_rate: int, seconds: float = 1.0, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG"])
def test_resamples_and_downmixes(tmp_path, fmt):
    left, right = tone(44100), tone(44100, freq=880.0)
    path = tmp_path / f"x.{fmt.lower()}"
    soundfile.write(path, np.stack([left, right], axis=1), 44100, format=fmt)
    mono = load_audio(path, 16000)
    assert mono.dtype == np.float32 and mono.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(mono))  # 1 Hz bins: both tones survive the mix at half amplitude
    assert set(np.argsort(spectrum)[-2:]) == {440, 880}
    stereo = load_audio(path, 22050, mono=False)
    assert stereo.shape == (2, 22050)
    assert probe_audio(path).channels == 2 and probe_audio(path).duration == pytest.approx(1.0)


def test_native_rate_is_returned_unchanged(tmp_path):
    audio = tone(16000)
    path = tmp_path / "x.flac"
    soundfile.write(path, audio, 16000, subtype="PCM_24")
    assert np.allclose(load_audio(path, 16000), audio, atol=1e-6)


def test_long_file_is_read_in_blocks(tmp_path):
    audio = tone(48000, seconds=12.0)  # more than two 2**18-frame blocks
    path = tmp_path / "long.wav"
    soundfile.write(path, audio, 48000, subtype="FLOAT")
    out = load_audio(path, 16000)
    assert len(out) == 16000 * 12
    assert np.allclose(out[1000:-1000], load_audio(path, 48000)[::3][1000:-1000], atol=2e-3)


def test_errors_name_the_file(tmp_path):
    cases = {
        "empty.wav": (b"", "empty file (0 bytes)"),
        "text.wav": (b"just some text, not audio", "not an audio file in a supported format"),
        "song.mid": (b"MThd\x00\x00\x00\x06", "a MIDI file, not audio"),
        "clip.m4a": (b"\x00\x00\x00\x20ftypM4A \x00\x00", "unsupported audio format MP4/M4A/AAC"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(MaestroError, match=re.escape(message)) as info:
            load_audio(tmp_path / name, 16000)
        assert info.value.path == str(tmp_path / name)
    with pytest.raises(MaestroError, match="no such file"):
        load_audio(tmp_path / "missing.wav", 16000)


def test_silence_is_an_error_unless_allowed(tmp_path):
    path = tmp_path / "silent.wav"
    soundfile.write(path, np.zeros(16000), 16000)
    with pytest.raises(MaestroError, match="audio is silent"):
        load_audio(path, 16000)
    assert not load_audio(path, 16000, allow_silent=True).any()
    zero = tmp_path / "zero.wav"
    soundfile.write(zero, np.zeros((0, 1)), 16000)
    with pytest.raises(MaestroError, match="zero length"):
        load_audio(zero, 16000)


def test_invalid_samples_are_an_error(tmp_path):
    audio = tone(16000)
    audio[100] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(path, audio, 16000, subtype="FLOAT")
    with pytest.raises(MaestroError, match="NaN or infinite"):
        load_audio(path, 16000)
