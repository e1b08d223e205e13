"""align features: the multirate pitch filterbank and the chroma/DLNCO built on it, on synthetic tones."""

from __future__ import annotations

import numpy as np
import pytest

from maestro_cli.align import features as sync_features
from maestro_cli.audio import filterbank as pitch_filterbank

RATE = pitch_filterbank.SAMPLE_RATE


def tone(pitch: int, seconds: float, start: float = 0.0, cents: float = 0.0, partials: int = 1) -> np.ndarray:
    """A tone at MIDI ``pitch`` (``cents`` sharp, ``partials`` harmonics of weight 1/k) after ``start`` s of silence."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 440.0 * 2 ** ((pitch - 69 + cents / 100) / 12)
    x = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, partials + 1))
    return np.concatenate([np.zeros(int(start * RATE)), x])


@pytest.mark.parametrize("pitch", [30, 69, 100])  # one pitch in each of the 882 / 4410 / 22050 Hz groups
def test_pure_tone_peaks_in_its_pitch_band_and_chroma_bin(pitch):
    energy, = pitch_filterbank.band_energy(tone(pitch, 2.0))
    assert energy.shape == (int(2.0 * 50) + 1, 88)
    mean = energy[20:80].mean(axis=0)
    assert pitch_filterbank.PITCHES[mean.argmax()] == pitch
    assert np.sort(mean)[-2] < 0.01 * mean.max()  # the neighbours are 20 dB down or more
    chroma = sync_features._chroma_from_pitch(energy[20:80], pitch_filterbank.MIDI_MIN)
    assert np.all(chroma.argmax(axis=1) == pitch % 12)


def test_tuning_shifts_the_filterbank():
    sharp = tone(57, 2.0, cents=45, partials=6)
    untuned, = pitch_filterbank.band_energy(sharp)
    tuned, = pitch_filterbank.band_energy(sharp, tuning_cents=sync_features.estimate_tuning(sharp))
    index = 57 - pitch_filterbank.MIDI_MIN
    share = lambda e: e[20:80, index].sum() / e[20:80].sum()  # noqa: E731
    assert abs(sync_features.estimate_tuning(sharp) - 45) < 5
    assert share(tuned) > 10 * share(untuned)


def test_energy_is_the_same_in_blocks(monkeypatch):
    """Block-wise processing (with margins) gives the energies of processing the whole signal at once."""
    audio = tone(45, 3.0, start=1.0) + np.concatenate([np.zeros(int(2.5 * RATE)), tone(81, 1.5)])
    whole, = pitch_filterbank.band_energy(audio)
    monkeypatch.setattr(pitch_filterbank, "BLOCK_S", 1.0)
    blocked, = pitch_filterbank.band_energy(audio)
    assert np.abs(blocked - whole).max() < 1e-3 * whole.max()


def piano_note(pitch: int, start: float, seconds: float, total: float, amplitude: float = 0.3) -> np.ndarray:
    """A decaying harmonic tone (4 partials, 50 ms fade-out) placed at ``start`` in ``total`` seconds."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    x = sum(amplitude / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 5))
    x *= np.exp(-t / 0.8) * np.minimum(1.0, (seconds - t) / 0.05)
    out = np.zeros(int(total * RATE))
    out[int(start * RATE):int(start * RATE) + len(x)] = x
    return out


def test_onsets_land_on_their_frame_and_pitch_class():
    audio = piano_note(64, 1.0, 1.5, 3.0) + piano_note(57, 1.7, 1.0, 3.0, amplitude=0.15)
    features = sync_features.audio_features(audio, trim=False)
    strong = np.argwhere(features.onset > 0.5)
    assert strong[0, 0] == 50 and strong[0, 1] == 64 % 12  # E at 1.0 s
    assert features.onset[:50].max() < 0.5  # before it only the zero-phase filters' weaker pre-echo
    frame = 85  # A at 1.7 s
    assert features.onset[frame].argmax() == 57 % 12 and features.onset[frame].max() > 0.9
    assert features.chroma[60].argmax() == 64 % 12 and features.chroma[95].argmax() in (64 % 12, 57 % 12)
