"""Training data, loss, validation note F1 and export for :mod:`maestro_cli.models.onsets_frames` (plain PyTorch).

Data are cached excerpts (:mod:`maestro_cli.models.onsets_frames_data`): log-mel float16 plus notes, held in
memory; a training example is a random crop of ``seq_frames`` frames of a random excerpt, with its onset,
offset, frame and velocity targets built from the notes. Validation decodes whole validation excerpts and
scores them with mir_eval (note F1, onset within 50 ms); the best checkpoint is the one with the highest note F1.
The training loop (resume, DDP, signals, checkpoints, progress) is :mod:`maestro_cli.models.loop`; this
trainer's checkpoints add the parameter count, and ``snapshot_every`` keeps weights-only snapshots.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from maestro_cli.models.loop import Training, utc_now
from maestro_cli.models.onsets_frames import (
    PRESETS,
    OnsetsFrames,
    OnsetsFramesConfig,
    checkpoint_dict,
    config_from_dict,
    decode_notes,
    labels_from_notes,
    loss_fn,
)
from maestro_cli.models.runtime import find_checkpoint, save_atomic


@dataclass
class TrainConfig:
    """``-O key=value`` options of ``maestro train onsets-frames``."""

    preset: str = "cpu"
    conv_channels: int | None = None
    fc_size: int | None = None
    lstm_size: int | None = None
    batch_size: int = 8
    seq_frames: int = 256  # about 8.2 s at 31.25 frames/s
    steps: int = 50000
    lr: float = 6e-4
    lr_decay: float = 0.98  # multiplied in every lr_decay_steps (the paper's schedule)
    lr_decay_steps: int = 1000
    warmup: int = 100
    grad_clip: float = 3.0
    eval_every: int = 250
    log_every: int = 10
    snapshot_every: int = 0  # also keep the weights as snapshots/step<N>.pt every N steps (0: never)
    seed: int = 0
    threads: int = 1  # torch CPU threads per process (0: torch's default)
    max_minutes: float | None = None  # stop cleanly (and save) after this much wall time in this invocation
    init: str | None = None  # start from these weights (a model folder or .pt) instead of random
    # data
    synthesize: bool = False  # render the MIDI with soundfonts instead of reading recordings
    cache: str | None = None  # excerpt cache folder (default: <out>/data)
    excerpt_seconds: float = 15.0
    excerpts_per_piece: int = 6
    validation_pieces: int = 16
    max_pieces: int = 0  # 0: every train-split piece
    mel_augment: bool = True  # a fresh random gain, EQ curve and noise floor on every crop (see augment_mel)


@dataclass
class Excerpts:
    """Cached excerpts of one split, in memory."""

    mels: list[np.ndarray]
    notes: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.mels)


def model_config(cfg: TrainConfig) -> OnsetsFramesConfig:
    if cfg.preset not in PRESETS:
        raise ValueError(f"unknown preset '{cfg.preset}'; choose one of {', '.join(PRESETS)}")
    overrides = {f: getattr(cfg, f) for f in ("conv_channels", "fc_size", "lstm_size") if getattr(cfg, f) is not None}
    return replace(PRESETS[cfg.preset], **overrides)


LOG_FLOOR = float(np.log(1e-5))  # the front end's floor (log of mel power)
DB = np.log(10.0) / 10.0  # one decibel of power in natural-log units


def augment_mel(mel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Online augmentation of a log-mel crop (frames, n_mels), as a different piano, room and microphone would.

    The cached excerpts are rendered and augmented once; this varies them again at every draw: a gain of
    -12..+12 dB, a smooth EQ curve over the mel bands (four random cosines, about +-6 dB), and, half of the time,
    a stationary noise floor 25-60 dB below the crop's loudest band, added in the power domain.
    """
    bands = np.linspace(0.0, np.pi, mel.shape[1], dtype=np.float32)
    curve = sum(rng.normal(0.0, 2.5) * np.cos(k * bands + rng.uniform(0, np.pi)) for k in range(1, 5))
    out = mel + np.float32(DB * (rng.uniform(-12.0, 12.0) + curve))
    if rng.random() < 0.5:
        tilt = np.float32(DB * rng.uniform(-3.0, 0.0)) * np.arange(mel.shape[1], dtype=np.float32) / 20.0
        floor = out.max() - DB * rng.uniform(25.0, 60.0) + tilt
        out = np.logaddexp(out, floor + np.float32(DB) * rng.normal(0.0, 1.0, out.shape).astype(np.float32))
    return np.maximum(out, LOG_FLOOR).astype(np.float32)


def random_batch(data: Excerpts, cfg: TrainConfig, frame_rate: float, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``batch_size`` random crops: log-mel (B, T, M) and targets (B, T, 88)."""
    mels, labels = [], {name: [] for name in OnsetsFrames.HEADS}
    for i in rng.integers(len(data), size=cfg.batch_size):
        mel, notes = data.mels[i], data.notes[i]
        start = int(rng.integers(0, max(len(mel) - cfg.seq_frames, 0) + 1))
        crop = np.zeros((cfg.seq_frames, mel.shape[1]), np.float32)
        piece = mel[start:start + cfg.seq_frames]
        crop[:len(piece)] = piece
        crop[len(piece):] = LOG_FLOOR
        if cfg.mel_augment:
            crop = augment_mel(crop, rng)
        shifted = notes.copy()
        shifted["start_s"] -= start / frame_rate
        shifted["end_s"] -= start / frame_rate
        for name, value in labels_from_notes(shifted, cfg.seq_frames, frame_rate).items():
            labels[name].append(value)
        mels.append(crop)
    return torch.from_numpy(np.stack(mels)), {k: torch.from_numpy(np.stack(v)) for k, v in labels.items()}


@torch.no_grad()
def validate(model: OnsetsFrames, data: Excerpts, device: torch.device) -> dict[str, float]:
    """Mean note / +offset / +velocity F1 (mir_eval) and loss over whole validation excerpts."""
    from maestro_cli.metrics.transcription import evaluate_notes

    model.eval()
    config = model.config
    rows, losses = [], []
    for mel, notes in zip(data.mels, data.notes):
        x = torch.from_numpy(mel.astype(np.float32))[None].to(device)
        logits = model(x)
        target = {k: torch.from_numpy(v)[None].to(device)
                  for k, v in labels_from_notes(notes, len(mel), config.frame_rate).items()}
        losses.append(float(loss_fn(logits, target)["total"]))
        probs = {k: torch.sigmoid(v)[0].cpu().numpy() for k, v in logits.items()}
        est = decode_notes(probs["onset"], probs["frame"], probs["velocity"], config)
        ref = notes[notes["start_s"] >= 0]
        rows.append(evaluate_notes(ref, est))
    model.train()
    keys = ("note_f1", "note_offset_f1", "note_offset_velocity_f1", "frame_f1")
    out = {key: float(np.mean([row[key] for row in rows])) if rows else 0.0 for key in keys}
    out["loss"] = float(np.mean(losses)) if losses else 0.0
    return out


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then ``lr * lr_decay ** (step / lr_decay_steps)``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return cfg.lr * cfg.lr_decay ** (step / cfg.lr_decay_steps)


class _Training(Training):
    """Onsets and Frames' part of the training loop: random crops, the four heads' loss, validation note F1."""

    best_key, score_key = "best_f1", "note_f1"
    minimize, best = False, -1.0  # the highest note F1 picks best.pt
    smoothing = 0.05

    def __init__(self, train_data: Excerpts, val_data: Excerpts, out: Path, cfg: TrainConfig, report=None):
        super().__init__(out, cfg, report)
        self.train_data, self.val_data = train_data, val_data

    def build(self, state):
        cfg = self.cfg
        self.mconf = config_from_dict(state["config"]) if state is not None else model_config(cfg)
        model = OnsetsFrames(self.mconf)
        if state is None and cfg.init:
            init = torch.load(find_checkpoint(Path(cfg.init)), map_location="cpu", weights_only=True)
            self.mconf = config_from_dict(init["config"])
            model = OnsetsFrames(self.mconf)
            model.load_state_dict(init["model"])
        model.to(self.device)
        self.n_params = sum(p.numel() for p in model.parameters())
        return model, torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def summary(self):
        return (f"onsets-frames: {self.n_params / 1e6:.2f} M params, {len(self.train_data)} train / "
                f"{len(self.val_data)} validation excerpts, device {self.device}, run folder {self.out}")

    def lr_at(self, step):
        return lr_at(step, self.cfg)

    def batch_loss(self, net):
        mel, labels = random_batch(self.train_data, self.cfg, self.mconf.frame_rate, self.rng)
        self.losses = loss_fn(net(mel.to(self.device)), {k: v.to(self.device) for k, v in labels.items()})
        return self.losses["total"]

    def train_entry(self, lr, loss, elapsed):
        entry = {"kind": "train", "step": self.step, "wall_s": round(self.wall_s, 1), "loss": round(loss, 4),
                 "lr": lr, **{k: round(v.item(), 4) for k, v in self.losses.items() if k != "total"}}
        return entry, f"loss {loss:.3f} lr {lr:.1e}", f"{self.wall_s / self.step:.2f} s/step"

    def validate(self):
        return validate(self.model, self.val_data, self.device) if len(self.val_data) else {"note_f1": 0.0}

    def val_entry(self, scores):
        return {"kind": "val", "step": self.step, "wall_s": round(self.wall_s, 1),
                **{k: round(v, 4) for k, v in scores.items()}, "time": utc_now()}

    def val_note(self, scores):
        return (f"step {self.step}: validation note F1 {scores['note_f1']:.3f} (best {self.best:.3f}), "
                + " ".join(f"{k} {v:.3f}" for k, v in scores.items() if k != "note_f1")
                + f", {self.wall_s / 60:.1f} min")

    def checkpoint_extras(self):
        return checkpoint_dict(self.model, params=self.n_params)

    def rng_state(self):
        return {"numpy": json.dumps(self.rng.bit_generator.state), "torch": torch.get_rng_state()}

    def set_rng_state(self, saved):
        self.rng.bit_generator.state = json.loads(saved["numpy"])
        torch.set_rng_state(saved["torch"])

    def saved(self, payload):
        if self.cfg.snapshot_every and self.step % self.cfg.snapshot_every == 0:  # weights only: candidates to ship
            (self.out / "snapshots").mkdir(exist_ok=True)
            save_atomic({k: v for k, v in payload.items() if k not in ("optimizer", "rng", "log")},
                        self.out / "snapshots" / f"step{self.step}.pt")


def train(train_data: Excerpts, val_data: Excerpts, out: Path, cfg: TrainConfig, *, resume: bool = False,
          device: str = "auto", report=None) -> Path:
    """Train (or resume) in run folder ``out``; returns the path of the best checkpoint.

    ``report`` receives the progress (see :class:`~maestro_cli.models.loop.LineReport`, the default).
    """
    return _Training(train_data, val_data, out, cfg, report).run(resume=resume, device=device)


def load_excerpts(cache: Path, split: str) -> Excerpts:
    from maestro_cli.models.onsets_frames_data import load_split

    mels, notes = [], []
    for mel, note_list in load_split(cache, split):
        mels.append(mel)
        notes.append(note_list)
    return Excerpts(mels, notes)


@torch.no_grad()
def tune_thresholds(model: OnsetsFrames, data: Excerpts,
                    onset: tuple[float, ...] = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5),
                    frame: tuple[float, ...] = (0.3, 0.4, 0.5)) -> tuple[OnsetsFramesConfig, float]:
    """The decoding thresholds with the best mean note F1 on ``data`` (posteriors computed once), and that F1."""
    from maestro_cli.metrics.transcription import evaluate_notes

    model.eval()
    posteriors = []
    for mel in data.mels:
        probs = model.posteriors(torch.from_numpy(mel.astype(np.float32))[None])
        posteriors.append({k: v[0].numpy() for k, v in probs.items()})
    best = (model.config, -1.0)
    for onset_threshold in onset:
        for frame_threshold in frame:
            config = replace(model.config, onset_threshold=onset_threshold, frame_threshold=frame_threshold)
            f1 = float(np.mean([evaluate_notes(notes[notes["start_s"] >= 0],
                                               decode_notes(p["onset"], p["frame"], p["velocity"], config))["note_f1"]
                                for p, notes in zip(posteriors, data.notes)]))
            if f1 > best[1]:
                best = (config, f1)
    return best


def export_model(checkpoint: Path, folder: Path, config: OnsetsFramesConfig | None = None) -> Path:
    """Write ``folder/model.pt`` (weights, config, training facts; no optimizer state) and ``config.json``.

    ``config`` replaces the checkpoint's config (e.g. with tuned thresholds; the shapes must match).
    """
    state = torch.load(find_checkpoint(Path(checkpoint)), map_location="cpu", weights_only=True)
    if config is not None:
        state["config"] = asdict(config)
    folder.mkdir(parents=True, exist_ok=True)
    keep = {key: state[key] for key in ("model", "config", "step", "wall_s", "best_f1", "params", "train_config")
            if key in state}
    keep["log"] = [entry for entry in state.get("log", []) if entry.get("kind") == "val"]
    save_atomic(keep, folder / "model.pt")
    (folder / "config.json").write_text(json.dumps({"config": state["config"], "train_config": state.get(
        "train_config", {}), "step": state.get("step")}, indent=1) + "\n", encoding="utf-8")
    return folder / "model.pt"
