"""Synchronisation features at 50 Hz: chroma and decaying onset chroma (DLNCO), from audio or from notes.

Both sides of an alignment go through the same last steps (folding to 12 pitch classes, quantisation,
local normalisation), so audio features and symbolic features of the same music are directly comparable:

* chroma: per-pitch energy (audio: the multirate IIR pitch filterbank of :mod:`maestro_cli.audio.filterbank`;
  notes: velocity with a piano-like decay and a few harmonics) -> folded to chroma -> quantised like CENS
  (l1-normalised, 1/4 for every step of 0.05/0.1/0.2/0.4 exceeded) -> unit length;
* onsets: one impulse per note onset and pitch (audio: peaks of the rectified slope of each pitch band's
  smoothed log energy at 147 Hz, above 2/3 of the local maximum over 0.3 s, weighted by the log of the slope;
  notes: velocity) -> chroma -> local max normalisation over 0.8 s -> decay over 10 frames, the maximum of
  the decayed copies (Ewert, Müller & Grosche 2009, "DLNCO"; silence stays zero).

Everything is numpy/scipy and block-wise or column-wise, so memory stays at the size of the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maestro_cli.errors import MaestroError

FEATURE_RATE = 50
SAMPLE_RATE = 22050
HOP = SAMPLE_RATE // FEATURE_RATE  # 441 samples = 20 ms
MIDI_MIN, MIDI_MAX = 21, 108
#: Audio frames quieter than this (relative to the loudest frame) count as silence at the ends.
SILENCE_DB = -45.0
#: Onset curves of the audio: 6.8 ms frames (150 samples at 22050 Hz, 30 at 4410 Hz, 6 at 882 Hz).
ONSET_RATE = 147
_DECAY = np.sqrt(1.0 / np.arange(1, 11))
_QUANT_STEPS = (0.05, 0.1, 0.2, 0.4)
_ENERGY_GAMMA = 100.0  # log compression of band energy (relative to the loudest pitch frame) before the slope
_SLOPE_GAMMA = 1e5  # log compression of the onset slopes' heights
_NOTE_ONSET_GAMMA = 1e3  # log compression of the notes' onset impulses (velocity / 127 times 1/k)


@dataclass
class Features:
    """Feature sequences of one side: ``chroma`` and ``onset`` are (frames, 12), unit rows (or zero rows)."""

    chroma: np.ndarray
    onset: np.ndarray
    offset_s: float  # time of frame 0 in the source, seconds
    rate: int = FEATURE_RATE

    def __len__(self) -> int:
        return len(self.chroma)

    def time(self, frames: np.ndarray) -> np.ndarray:
        return self.offset_s + np.asarray(frames, dtype=np.float64) / self.rate


def _unit_rows(x: np.ndarray, threshold: float = 1e-6, fill: float | None = None) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    out = np.where(norm > threshold, x / np.maximum(norm, threshold), 0.0)
    if fill is not None:  # silent chroma frames become the uniform vector, like synctoolbox's normalisation
        out[norm[:, 0] <= threshold] = fill
    return out


def _fold(pitch_energy: np.ndarray, first_pitch: int = 0) -> np.ndarray:
    """(frames, pitches from ``first_pitch``) -> (frames, 12)."""
    chroma = np.zeros((len(pitch_energy), 12))
    for pc in range(12):
        chroma[:, pc] = pitch_energy[:, (pc - first_pitch) % 12::12].sum(axis=1)
    return chroma


def _chroma_from_pitch(pitch_energy: np.ndarray, first_pitch: int = 0) -> np.ndarray:
    """Quantised chroma (CENS steps, without the smoothing), unit rows; silent frames get the uniform vector."""
    chroma = _fold(pitch_energy, first_pitch)
    total = chroma.sum(axis=1, keepdims=True)
    silent = total[:, 0] <= 1e-6 * max(total.max(initial=0.0), 1e-30)
    share = chroma / np.where(silent[:, None], 1.0, total)
    quantised = sum((share > step).astype(np.float64) for step in _QUANT_STEPS) / len(_QUANT_STEPS)
    quantised[silent] = 0.0
    return _unit_rows(quantised, threshold=1e-3, fill=1.0 / np.sqrt(12))


def _dlnco(onset_chroma: np.ndarray, rate: int) -> np.ndarray:
    """Local max normalisation over 0.8 s, then the maximum of 10 decaying copies (not unit rows)."""
    from scipy.ndimage import maximum_filter1d

    if len(onset_chroma) == 0:
        return onset_chroma
    norm = np.linalg.norm(onset_chroma, axis=1)
    local = maximum_filter1d(norm, size=max(1, int(0.8 * rate)), mode="constant")
    normalised = onset_chroma / np.maximum(local, 0.1 * norm.max() + 1e-12)[:, None]
    decayed = normalised.copy()
    for k, coef in enumerate(_DECAY[1:], 1):
        np.maximum(decayed[k:], coef * normalised[:-k], out=decayed[k:])
    return decayed


# ---------------------------------------------------------------------------------------------- audio side


def _stft_blocks(audio: np.ndarray, n_fft: int, step: int = 1, block: int = 2048):
    """Power spectra (frames, bins) block by block; frames centred at multiples of HOP (every ``step``-th)."""
    pad = n_fft // 2
    padded = np.pad(audio.astype(np.float32), (pad, pad))
    frames = 1 + (len(padded) - n_fft) // HOP
    window = np.hanning(n_fft).astype(np.float32)
    strides = (padded.strides[0] * HOP * step, padded.strides[0])
    for start in range(0, frames, block * step):
        count = min(block, (frames - start + step - 1) // step)
        view = np.lib.stride_tricks.as_strided(padded[start * HOP:], shape=(count, n_fft), strides=strides)
        spectrum = np.fft.rfft(view * window, axis=1)
        yield (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)


def _onset_chroma(onset_energy: np.ndarray, reference: float, frames: int) -> np.ndarray:
    """(frames, 12) onset impulses at :data:`FEATURE_RATE` from per-pitch energy at :data:`ONSET_RATE`.

    Per pitch band (one column at a time, so memory stays small): log energy, Gaussian smoothing (13.6 ms),
    rectified slope, its peaks above 2/3 of the local maximum over 0.3 s, each weighted by the log of its height.
    """
    from scipy.ndimage import gaussian_filter1d, maximum_filter1d

    out = np.zeros((frames, 12))
    size = int(0.3 * ONSET_RATE)
    for k in range(onset_energy.shape[1]):
        curve = gaussian_filter1d(np.log1p(_ENERGY_GAMMA / reference * onset_energy[:, k].astype(np.float64)), 2.0)
        slope = np.maximum(np.diff(curve, prepend=curve[:1]), 0.0)
        local = maximum_filter1d(slope, size=size)
        mid = slope[1:-1]
        peaks = np.flatnonzero((mid > slope[:-2]) & (mid >= slope[2:]) & (mid >= 2.0 / 3.0 * local[1:-1])) + 1
        frame = np.minimum(np.round(peaks * (FEATURE_RATE / ONSET_RATE)).astype(int), frames - 1)
        np.add.at(out[:, (MIDI_MIN + k) % 12], frame, np.log1p(_SLOPE_GAMMA * slope[peaks]))
    return out


def estimate_tuning(audio: np.ndarray, n_fft: int = 4096) -> float:
    """Deviation from A440 in cents (-50..50), from the magnitude-weighted pitch of spectral peaks."""
    step = max(1, len(audio) // HOP // 2000)  # about 2000 frames are plenty
    total, count = None, 0
    for power in _stft_blocks(audio, n_fft, step=step):
        part = np.sqrt(power).sum(axis=0)
        total = part if total is None else total + part
        count += len(power)
    spectrum = total / max(count, 1)
    freqs = np.arange(len(spectrum)) * SAMPLE_RATE / n_fft
    peaks = np.flatnonzero((spectrum[1:-1] > spectrum[:-2]) & (spectrum[1:-1] > spectrum[2:])) + 1
    peaks = peaks[(freqs[peaks] > 100) & (freqs[peaks] < 2000)]
    if len(peaks) < 5:
        return 0.0
    # parabolic interpolation of the peak frequency
    a, b, c = (np.log(spectrum[peaks + k] + 1e-12) for k in (-1, 0, 1))
    shift = 0.5 * (a - c) / np.where(np.abs(a - 2 * b + c) > 1e-12, a - 2 * b + c, 1e-12)
    freq = (peaks + np.clip(shift, -0.5, 0.5)) * SAMPLE_RATE / n_fft
    cents = 1200 * np.log2(freq / 440.0)
    angle = 2 * np.pi * cents / 100.0
    weight = spectrum[peaks]
    mean = np.arctan2((weight * np.sin(angle)).sum(), (weight * np.cos(angle)).sum())
    return float(mean / (2 * np.pi) * 100.0)


def audio_features(audio: np.ndarray, path: Path | str | None = None, trim: bool = True) -> Features:
    """Chroma + DLNCO features of mono ``audio`` at :data:`SAMPLE_RATE`; silent ends trimmed if ``trim``."""
    from maestro_cli.audio.filterbank import band_energy

    if len(audio) < HOP * 4:
        raise MaestroError("audio is too short to align (under 0.1 s)", path)
    pitch, onset_energy = band_energy(audio, estimate_tuning(audio), (FEATURE_RATE, ONSET_RATE))
    energy = pitch.sum(axis=1)
    start, stop = _active_range(energy) if trim else (0, len(energy))
    if stop <= start:
        raise MaestroError("audio is silent: nothing to align", path)
    chroma = _chroma_from_pitch(pitch[start:stop], MIDI_MIN)
    onsets = _onset_chroma(onset_energy, float(pitch.max()), len(pitch))
    return Features(chroma, _dlnco(onsets[start:stop], FEATURE_RATE), start / FEATURE_RATE)


def _active_range(energy: np.ndarray) -> tuple[int, int]:
    """First and one-past-last frame louder than :data:`SILENCE_DB` below the loudest frame."""
    peak = energy.max(initial=0.0)
    if peak <= 0:
        return 0, 0
    loud = np.flatnonzero(10 * np.log10(np.maximum(energy, 1e-30) / peak) > SILENCE_DB)
    margin = FEATURE_RATE // 10
    return max(0, int(loud[0]) - margin), min(len(energy), int(loud[-1]) + 1 + margin)


# -------------------------------------------------------------------------------------------- symbolic side


def render_score(score, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A :class:`maestro_cli.symbolic.scores.Score` rendered with the built-in soundfont synth (a MIDI score as
    the file is, pedal included; other formats through a MIDI file at the score's tempo)."""
    import tempfile

    from maestro_cli.audio.synth import render_midi_to_array
    from maestro_cli.symbolic.scores import write_midi

    if score.format == "midi":
        return render_midi_to_array(score.path, sample_rate=sample_rate)
    with tempfile.TemporaryDirectory() as folder:
        midi = Path(folder) / "score.mid"
        write_midi(score, midi)
        return render_midi_to_array(midi, sample_rate=sample_rate)


def note_features(notes: np.ndarray, harmonics: bool = True, decay_s: float = 0.8) -> Features:
    """Chroma + DLNCO features computed directly from notes, starting at the first onset.

    Each note contributes the energy (squared amplitude, like the audio side) of a velocity-weighted
    amplitude over its duration with an exponential decay (a piano string fades) and, if ``harmonics``,
    partials 2..6 with amplitudes 1/k so the chroma resembles that of audio; its onset impulses are
    log-compressed like the audio's onset peaks.
    """
    start = float(notes["start_s"].min())
    onsets = notes["start_s"] - start
    ends = np.maximum(notes["end_s"] - start, onsets + 1.0 / FEATURE_RATE)
    frames = int(np.ceil(ends.max() * FEATURE_RATE)) + 2
    pitch = np.zeros((frames, 128))
    onset_pitch = np.zeros((frames, 128))
    velocity = notes["velocity"].astype(np.float64) / 127.0
    partials = [(0, 1.0)]
    if harmonics:
        partials += [(int(round(12 * np.log2(k))), 1.0 / k) for k in range(2, 7)]
    first = np.round(onsets * FEATURE_RATE).astype(int)
    last = np.maximum(np.ceil(ends * FEATURE_RATE).astype(int), first + 1)
    length = last - first
    # expand every note into its frames at once
    note_index = np.repeat(np.arange(len(notes)), length)
    frame = first[note_index] + (np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length))
    elapsed = frame / FEATURE_RATE - onsets[note_index]
    amplitude = velocity[note_index] * np.exp(-np.maximum(elapsed, 0.0) / decay_s)
    for shift, weight in partials:
        target = notes["pitch"].astype(int) + shift
        keep = target[note_index] <= 127
        np.add.at(pitch, (frame[keep], target[note_index][keep]), (weight * amplitude[keep]) ** 2)
        keep_onset = target <= 127
        np.add.at(onset_pitch, (first[keep_onset], target[keep_onset]),
                  np.log1p(_NOTE_ONSET_GAMMA * weight * velocity[keep_onset]))
    chroma = _chroma_from_pitch(pitch)
    onset = _dlnco(_fold(onset_pitch), FEATURE_RATE)
    return Features(chroma, onset, start)
