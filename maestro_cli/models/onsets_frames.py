"""Onsets and Frames (Hawthorne et al. 2018, "Onsets and Frames"; 2019, "Enabling Factorized Piano Music
Modeling and Generation with the MAESTRO Dataset"): piano transcription from a log-mel spectrogram.

One file, plain PyTorch, nothing about plugins or the CLI:

* :class:`OnsetsFramesConfig` with presets ``tiny`` (tests), ``cpu`` (the default, sized for a few CPU cores)
  and ``paper`` (the 2019 model: separate acoustic stacks of 48/96 channels, 768 units, 384-unit BiLSTMs).
* :class:`LogMel`: torch-only log-mel front end (16 kHz, Slaney mel scale like librosa).
* :class:`OnsetsFrames`: onset, offset, frame and velocity heads; the onset and offset posteriors feed the
  frame head (stop-gradient), as in the paper.
* :func:`labels_from_notes` (training targets), :func:`decode_notes` (posteriors to notes with velocities) and
  :func:`transcribe_array` (overlapping chunks, posteriors stitched, decoded once).

Piano keys are indexed 0..87 (MIDI 21..108); times are frames of ``hop_length / SAMPLE_RATE`` seconds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from maestro_cli.symbolic.notes import from_rows, sort_notes

SAMPLE_RATE = 16000
MIN_MIDI = 21
N_KEYS = 88


@dataclass(frozen=True)
class OnsetsFramesConfig:
    """Front end, model size and decoding thresholds (all saved in the checkpoint)."""

    n_mels: int = 229
    n_fft: int = 2048
    hop_length: int = 512
    fmin: float = 30.0
    fmax: float = 8000.0
    conv_channels: int = 12  # first conv block; the third has twice as many
    fc_size: int = 256
    lstm_size: int = 96  # per direction
    shared_stack: bool = True  # one acoustic stack for all heads (CPU) or one per head (paper)
    dropout: float = 0.25
    onset_threshold: float = 0.5
    frame_threshold: float = 0.5
    min_frames: int = 1  # notes shorter than this many frames are dropped

    @property
    def frame_rate(self) -> float:
        return SAMPLE_RATE / self.hop_length


PRESETS: dict[str, OnsetsFramesConfig] = {
    "tiny": OnsetsFramesConfig(conv_channels=4, fc_size=48, lstm_size=24, dropout=0.0),
    "cpu": OnsetsFramesConfig(),
    "paper": OnsetsFramesConfig(conv_channels=48, fc_size=768, lstm_size=384, shared_stack=False, dropout=0.5),
}


def config_from_dict(values: dict[str, Any]) -> OnsetsFramesConfig:
    """Rebuild a config saved with ``asdict`` (unknown keys are an error)."""
    return OnsetsFramesConfig(**values)


# ---------------------------------------------------------------------------------------------------- front end

def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = math.log(6.4) / 27.0
    linear = hz / f_sp
    return torch.where(hz >= min_log_hz, min_log_hz / f_sp + torch.log(hz.clamp(min=1e-9) / min_log_hz) / logstep,
                       linear)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return torch.where(mel >= min_log_mel, min_log_hz * torch.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(config: OnsetsFramesConfig) -> torch.Tensor:
    """Slaney-normalised triangular filters, shape (n_fft // 2 + 1, n_mels)."""
    fft_hz = torch.linspace(0, SAMPLE_RATE / 2, config.n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(float(_hz_to_mel(torch.tensor(config.fmin, dtype=torch.float64))),
                          float(_hz_to_mel(torch.tensor(config.fmax, dtype=torch.float64))),
                          config.n_mels + 2, dtype=torch.float64)
    edges = _mel_to_hz(mels)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (fft_hz[:, None] - lower) / (centre - lower)
    falling = (upper - fft_hz[:, None]) / (upper - centre)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0) * (2.0 / (upper - lower))
    return weights.float()


class LogMel(nn.Module):
    """Audio (B, samples) at 16 kHz -> log-mel (B, frames, n_mels), frame ``i`` centred on sample ``i * hop``.

    The signal is zero-padded by ``n_fft // 2`` on both sides, so ``len // hop + 1`` frames come out and any
    slice of frames can be computed from the matching slice of audio (see :func:`audio_slice_for_frames`).
    """

    def __init__(self, config: OnsetsFramesConfig):
        super().__init__()
        self.n_fft, self.hop = config.n_fft, config.hop_length
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        self.register_buffer("filters", mel_filterbank(config), persistent=False)

    def forward(self, audio: torch.Tensor, padded: bool = False) -> torch.Tensor:
        if not padded:
            audio = F.pad(audio, (self.n_fft // 2, self.n_fft // 2))
        spec = torch.stft(audio, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()  # (B, bins, frames)
        mel = torch.matmul(power.transpose(1, 2), self.filters)
        return torch.log(mel.clamp(min=1e-5))


def n_frames(n_samples: int, config: OnsetsFramesConfig) -> int:
    return n_samples // config.hop_length + 1


def audio_slice_for_frames(audio: np.ndarray, start: int, stop: int, config: OnsetsFramesConfig) -> np.ndarray:
    """The zero-padded samples that :class:`LogMel` (``padded=True``) turns into frames ``start..stop-1``."""
    half = config.n_fft // 2
    first, last = start * config.hop_length - half, (stop - 1) * config.hop_length + half
    lo, hi = max(first, 0), min(last, len(audio))
    piece = audio[lo:hi] if hi > lo else audio[:0]
    left = lo - first
    return np.pad(piece, (left, last - first - left - len(piece)))


# ---------------------------------------------------------------------------------------------------- model

class AcousticStack(nn.Module):
    """Conv stack of the paper: log-mel (B, T, M) -> features (B, T, fc_size)."""

    def __init__(self, config: OnsetsFramesConfig):
        super().__init__()
        c = config.conv_channels

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

        self.conv = nn.Sequential(
            *block(1, c), *block(c, c), nn.MaxPool2d((1, 2)), nn.Dropout(config.dropout / 2),
            *block(c, 2 * c), nn.MaxPool2d((1, 2)), nn.Dropout(config.dropout / 2),
        )
        self.fc = nn.Sequential(nn.Linear(2 * c * (config.n_mels // 4), config.fc_size), nn.Dropout(config.dropout))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv(mel.unsqueeze(1))  # (B, C, T, M/4)
        x = x.transpose(1, 2).flatten(2)
        return self.fc(x)


class BiLSTMHead(nn.Module):
    """Bidirectional LSTM then a linear layer to 88 logits."""

    def __init__(self, input_size: int, config: OnsetsFramesConfig):
        super().__init__()
        self.lstm = nn.LSTM(input_size, config.lstm_size, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * config.lstm_size, N_KEYS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.lstm(x)[0])


class OnsetsFrames(nn.Module):
    """log-mel (B, T, M) -> logits ``onset``, ``offset``, ``frame`` and ``velocity`` (B, T, 88)."""

    HEADS = ("onset", "offset", "frame", "velocity")

    def __init__(self, config: OnsetsFramesConfig):
        super().__init__()
        self.config = config
        self.mel = LogMel(config)
        names = ("shared",) if config.shared_stack else self.HEADS
        self.stacks = nn.ModuleDict({name: AcousticStack(config) for name in names})
        self.onset = BiLSTMHead(config.fc_size, config)
        self.offset = BiLSTMHead(config.fc_size, config)
        self.frame_act = nn.Linear(config.fc_size, N_KEYS)
        self.frame = BiLSTMHead(3 * N_KEYS, config)
        self.velocity = nn.Linear(config.fc_size, N_KEYS)
        with torch.no_grad():  # start at the rarity of active keys, so early steps learn notes, not silence
            for head, prior in ((self.onset.out, 0.003), (self.offset.out, 0.003), (self.frame.out, 0.03)):
                head.bias.fill_(math.log(prior / (1 - prior)))

    def forward(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.config.shared_stack:
            features = dict.fromkeys(self.HEADS, self.stacks["shared"](mel))
        else:
            features = {head: self.stacks[head](mel) for head in self.HEADS}
        onset = self.onset(features["onset"])
        offset = self.offset(features["offset"])
        activation = torch.sigmoid(self.frame_act(features["frame"]))
        frame_in = torch.cat([torch.sigmoid(onset).detach(), torch.sigmoid(offset).detach(), activation], dim=-1)
        return {"onset": onset, "offset": offset, "frame": self.frame(frame_in),
                "velocity": self.velocity(features["velocity"])}

    @torch.no_grad()
    def posteriors(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        """Probabilities in [0, 1] for every head (velocity: MIDI velocity / 128)."""
        return {name: torch.sigmoid(logits) for name, logits in self(mel).items()}


def loss_fn(logits: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """BCE for onset, offset and frame; velocity: squared error on onset frames only (the paper's loss)."""
    losses = {name: F.binary_cross_entropy_with_logits(logits[name], labels[name])
              for name in ("onset", "offset", "frame")}
    onset = labels["onset"]
    velocity_error = onset * (torch.sigmoid(logits["velocity"]) - labels["velocity"]).square()
    losses["velocity"] = velocity_error.sum() / onset.sum().clamp(min=1.0)
    losses["total"] = sum(losses.values())
    return losses


# ---------------------------------------------------------------------------------------------------- labels

def labels_from_notes(notes: np.ndarray, frames: int, frame_rate: float) -> dict[str, np.ndarray]:
    """Targets (frames, 88) float32 from notes (:data:`~maestro_cli.symbolic.notes.NOTE_DTYPE`).

    A note with a negative onset was struck before the excerpt: it gets frame labels but no onset.
    """
    out = {name: np.zeros((frames, N_KEYS), np.float32) for name in OnsetsFrames.HEADS}
    for pitch, onset_s, offset_s, velocity in notes.tolist():
        key = pitch - MIN_MIDI
        if not 0 <= key < N_KEYS:
            continue
        on = int(round(onset_s * frame_rate))
        off = max(int(round(offset_s * frame_rate)), on + 1)
        if off <= 0 or on >= frames:
            continue
        out["frame"][max(on, 0):min(off, frames), key] = 1.0
        if on >= 0:
            out["onset"][on, key] = 1.0
            out["velocity"][on, key] = velocity / 128.0
        if off < frames:
            out["offset"][off, key] = 1.0
    return out


# ---------------------------------------------------------------------------------------------------- decoding

def decode_notes(onset: np.ndarray, frame: np.ndarray, velocity: np.ndarray, config: OnsetsFramesConfig
                 ) -> np.ndarray:
    """Posteriors (T, 88) -> notes (:data:`~maestro_cli.symbolic.notes.NOTE_DTYPE`, velocity 1..127), sorted by
    onset then pitch.

    A note starts where the onset posterior rises above ``onset_threshold`` and lasts while the frame (or the
    onset) posterior stays above its threshold, until the next onset of the same key. Notes shorter than
    ``min_frames`` are dropped; the velocity is the velocity head at the onset frame.
    """
    active_onset = onset > config.onset_threshold
    starts = active_onset & ~np.vstack([np.zeros((1, N_KEYS), bool), active_onset[:-1]])
    sounding = (frame > config.frame_threshold) | active_onset
    frames = len(onset)
    rows: list[tuple[float, float, int, int]] = []
    for t, key in zip(*np.nonzero(starts)):
        end = t + 1
        while end < frames and sounding[end, key] and not starts[end, key]:
            end += 1
        if end - t < config.min_frames:
            continue
        vel = int(np.clip(round(float(velocity[t, key]) * 128), 1, 127))
        rows.append((t / config.frame_rate, end / config.frame_rate, key + MIN_MIDI, vel))
    return sort_notes(from_rows(rows))


def decode_candidates(onset: np.ndarray, frame: np.ndarray, velocity: np.ndarray, config: OnsetsFramesConfig,
                      floor: float) -> tuple[np.ndarray, np.ndarray]:
    """The notes :func:`decode_notes` finds, those it finds with ``onset_threshold=floor`` besides (starting more
    than two frames from a decided note of their key), and each one's peak onset posterior (over the frames from
    its onset on where the posterior stays above ``floor``)."""
    import dataclasses

    decided = decode_notes(onset, frame, velocity, config)
    loose = decode_notes(onset, frame, velocity, dataclasses.replace(config, onset_threshold=floor))
    new = [not np.any((decided["pitch"] == note["pitch"])
                      & (np.abs(decided["start_s"] - note["start_s"]) <= 2.5 / config.frame_rate)) for note in loose]
    notes = sort_notes(np.concatenate([decided, loose[np.asarray(new, bool)]]))
    above = onset > floor
    confidence = np.empty(len(notes))
    for i, (t, key) in enumerate(zip(np.rint(notes["start_s"] * config.frame_rate).astype(int),
                                     notes["pitch"].astype(int) - MIN_MIDI)):
        end = t + 1
        while end < len(onset) and above[end, key]:
            end += 1
        confidence[i] = onset[t:end, key].max()
    return notes, confidence


# ---------------------------------------------------------------------------------------------------- inference

@dataclass
class ChunkPlan:
    """Frames ``[start, stop)`` are computed; ``[keep_start, keep_stop)`` of them are kept."""

    start: int
    stop: int
    keep_start: int
    keep_stop: int


def plan_chunks(total: int, chunk: int, overlap: int) -> list[ChunkPlan]:
    """Cover ``total`` frames with windows of ``chunk`` frames overlapping by ``2 * overlap``.

    Each window keeps its centre; the kept ranges tile ``[0, total)`` exactly once.
    """
    if chunk <= 2 * overlap:
        raise ValueError("chunk must be longer than twice the overlap")
    plans, keep = [], 0
    while keep < total:
        start = max(keep - overlap, 0)
        stop = min(start + chunk, total)
        keep_stop = stop if stop == total else stop - overlap
        plans.append(ChunkPlan(start, stop, keep, keep_stop))
        keep = keep_stop
    return plans


@torch.no_grad()
def posteriors_array(model: OnsetsFrames, audio: np.ndarray, chunk_seconds: float = 20.0,
                     overlap_seconds: float = 3.0, batch_chunks: int = 4) -> dict[str, np.ndarray]:
    """Posteriors (T, 88) float32 of a whole 16 kHz mono recording, computed in overlapping chunks.

    Up to ``batch_chunks`` chunks of equal length run as one batch (the LSTMs then step through a chunk's
    frames once for all of them). Memory is bounded by one batch plus the (T, 88) outputs: an hour of audio
    stays well under 2 GB with the ``cpu`` preset.
    """
    config = model.config
    total = n_frames(len(audio), config)
    chunk = max(int(chunk_seconds * config.frame_rate), 1)
    overlap = min(int(overlap_seconds * config.frame_rate), (chunk - 1) // 2)
    out = {name: np.zeros((total, N_KEYS), np.float32) for name in ("onset", "frame", "velocity", "offset")}
    plans = plan_chunks(total, chunk, overlap)
    groups: list[list[ChunkPlan]] = []
    for plan in plans:  # consecutive chunks of the same length share a batch (only the last one differs)
        last = groups[-1] if groups else []
        if 0 < len(last) < batch_chunks and last[0].stop - last[0].start == plan.stop - plan.start:
            last.append(plan)
        else:
            groups.append([plan])
    for group in groups:
        pieces = [audio_slice_for_frames(audio, p.start, p.stop, config) for p in group]
        mel = model.mel(torch.from_numpy(np.stack(pieces).astype(np.float32)), padded=True)
        probs = model.posteriors(mel)
        for row, plan in enumerate(group):
            lo, hi = plan.keep_start - plan.start, plan.keep_stop - plan.start
            for name in out:
                out[name][plan.keep_start:plan.keep_stop] = probs[name][row, lo:hi].numpy()
    return out


def transcribe_array(model: OnsetsFrames, audio: np.ndarray, **chunking: float | int) -> np.ndarray:
    """Notes (:data:`~maestro_cli.symbolic.notes.NOTE_DTYPE`) of a 16 kHz mono recording (see :func:`decode_notes`)."""
    model.eval()
    post = posteriors_array(model, audio, **chunking)
    return decode_notes(post["onset"], post["frame"], post["velocity"], model.config)


# ---------------------------------------------------------------------------------------------------- checkpoints

def load_model(path, map_location: str = "cpu") -> OnsetsFrames:
    """An eval-mode model from a checkpoint dict (``model``, ``config``) saved with ``torch.save``."""
    state = torch.load(path, map_location=map_location, weights_only=True)
    model = OnsetsFrames(config_from_dict(state["config"]))
    model.load_state_dict(state["model"])
    return model.eval()


def checkpoint_dict(model: OnsetsFrames, **extra: Any) -> dict[str, Any]:
    """The plain dict saved to disk: weights, config and whatever the trainer adds (step, optimizer, ...)."""
    return {"model": model.state_dict(), "config": asdict(model.config), **extra}

