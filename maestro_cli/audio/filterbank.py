"""Multirate IIR pitch filterbank: energy per MIDI pitch of audio, at two frame rates, block by block.

After Müller's chroma toolbox: 88 elliptic band-pass filters (Q = 25, 1 dB pass-band ripple, 50 dB stop-band
attenuation) centred on the tuned MIDI pitches 21..108. Pitches 96..108 run at 22050 Hz, 60..95 at 4410 Hz and
21..59 at 882 Hz (the audio decimated by 5 and 25), so every filter stays well conditioned. Each band is
filtered forwards and backwards (zero phase), squared and summed over windows centred at the frame times
(short-time mean-square power, scaled to the 22050 Hz sample grid so all bands compare).

The audio is processed in blocks of :data:`BLOCK_S` seconds, each filtered with margins on either side that
outlast the ringing of its group's filters (:data:`MARGINS_S`: the narrow low-pitch bands ring for seconds),
so memory stays at the size of the outputs whatever the length of the piece.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 22050
MIDI_MIN, MIDI_MAX = 21, 108
PITCHES = np.arange(MIDI_MIN, MIDI_MAX + 1)
#: (sample rate, lowest pitch, highest pitch) of the three filter groups.
GROUPS = ((22050, 96, 108), (4410, 60, 95), (882, 21, 59))
BLOCK_S = 30.0
#: Margin per group sample rate: each group's slowest filter decays by 40 dB or more within it.
MARGINS_S = {22050: 0.5, 4410: 2.0, 882: 8.0}
_GRID = 25  # block boundaries on multiples of 25 samples: one sample at 882 Hz


def group_rate(pitch: int) -> int:
    """Sample rate at which the band of MIDI ``pitch`` is filtered."""
    return next(rate for rate, low, high in GROUPS if low <= pitch <= high)


@lru_cache(maxsize=8)
def filterbank(tuning_cents: float, q: float = 25.0, stop: float = 2.0, ripple_db: float = 1.0,
               attenuation_db: float = 50.0) -> tuple[np.ndarray, ...]:
    """Second-order sections of the band-pass filter of every pitch 21..108 at its group's sample rate."""
    from scipy import signal

    bands = []
    for pitch in PITCHES:
        rate = group_rate(pitch)
        centre = 440.0 * 2 ** ((pitch - 69 + tuning_cents / 100.0) / 12)
        nyquist = rate / 2
        half = centre / (2 * q)
        passband = np.array([centre - half, centre + half]) / nyquist
        stopband = np.array([centre - stop * half, centre + stop * half]) / nyquist
        order, edges = signal.ellipord(passband, stopband, ripple_db, attenuation_db)
        bands.append(signal.ellip(order, ripple_db, attenuation_db, edges, btype="bandpass", output="sos"))
    return tuple(bands)


def _decimate(x: np.ndarray) -> np.ndarray:
    """Down by 5 with a Kaiser-windowed sinc low-pass (zero delay, like MATLAB's resample)."""
    from scipy import signal

    return signal.resample_poly(x, 1, 5, window=("kaiser", 5.0))


def _window_sums(squared: np.ndarray, rate: int, first_s: float, centres_s: np.ndarray, half_s: float) -> np.ndarray:
    """Sums of ``squared`` (samples from ``first_s`` at ``rate``) over [centre - half, centre + half)."""
    prefix = np.concatenate([[0.0], np.cumsum(squared)])
    grid = np.arange(len(prefix))
    lo = (centres_s - half_s - first_s) * rate
    hi = (centres_s + half_s - first_s) * rate
    return (np.interp(hi, grid, prefix) - np.interp(lo, grid, prefix)) * (SAMPLE_RATE / rate)


def band_energy(audio: np.ndarray, tuning_cents: float = 0.0,
                frame_rates: tuple[int, ...] = (50,)) -> list[np.ndarray]:
    """Energy per pitch of mono ``audio`` at :data:`SAMPLE_RATE`: one (frames, 88) float32 array per frame rate.

    Frame ``k`` at rate ``r`` is centred at ``k / r`` seconds and spans two frame periods.
    """
    from scipy import signal

    bands = filterbank(round(float(tuning_cents), 1))
    duration = len(audio) / SAMPLE_RATE
    outputs = [np.zeros((int(np.floor(duration * rate)) + 1, len(PITCHES)), np.float32) for rate in frame_rates]
    block = int(BLOCK_S * SAMPLE_RATE) // _GRID * _GRID
    widest = int(max(MARGINS_S.values()) * SAMPLE_RATE) // _GRID * _GRID
    group_rates = [group_rate(pitch) for pitch in PITCHES]
    for start in range(0, len(audio), block):
        stop = min(start + block, len(audio))
        lo = max(0, start - widest)
        chunk = np.asarray(audio[lo:stop + widest], np.float64)
        signals = {22050: chunk}
        signals[4410] = _decimate(chunk)
        signals[882] = _decimate(signals[4410])
        frames = [np.arange(int(np.ceil(start / SAMPLE_RATE * rate)),
                            min(len(out), int(np.ceil(stop / SAMPLE_RATE * rate))))
                  for rate, out in zip(frame_rates, outputs)]
        for index, (rate, sos) in enumerate(zip(group_rates, bands)):
            margin = int(MARGINS_S[rate] * SAMPLE_RATE) // _GRID * _GRID
            first = max(lo, start - margin)  # on the 882 Hz grid, so on every group's grid
            step = SAMPLE_RATE // rate
            x = signals[rate][(first - lo) // step:(stop + margin - lo) // step]
            if len(x) <= 3 * (2 * len(sos) + 1):
                continue  # too short to filter: the band stays silent
            squared = signal.sosfiltfilt(sos, x) ** 2
            for frame_rate, out, k in zip(frame_rates, outputs, frames):
                out[k, index] = _window_sums(squared, rate, first / SAMPLE_RATE, k / frame_rate, 1.0 / frame_rate)
    return outputs
