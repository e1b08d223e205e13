"""Training of :mod:`maestro_cli.models.transformer` (plain PyTorch): its options, learning-rate schedule and trainer.

Windows of the token cache are :mod:`~maestro_cli.models.transformer_data`, checkpoints
:mod:`~maestro_cli.models.transformer_checkpoint`, NLL :mod:`~maestro_cli.models.transformer_nll`. The training loop
(resume, DDP, signals, checkpoints, progress) is :mod:`maestro_cli.models.loop`; this trainer's checkpoints add the
tokenizer, the tokens seen, the learning-rate cycle and the history of ``init`` weights (``prior``), and its
validation curve goes to ``val.csv``.
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from maestro_cli.models.loop import Training, utc_now
from maestro_cli.models.transformer import Transformer, TransformerConfig, deepen, preset_config
from maestro_cli.models.transformer_checkpoint import lineage, load_model, tokenizer_info
from maestro_cli.models.transformer_data import IGNORE, TokenSplit, batch_from, fixed_windows, random_batch
from maestro_cli.models.transformer_nll import autocast, mean_nll
from maestro_cli.tokens import performance as events


@dataclass
class TrainConfig:
    """``-O key=value`` options of ``maestro train transformer``."""

    preset: str = "small"
    n_layer: int | None = None
    n_head: int | None = None
    d_model: int | None = None
    d_ff: int | None = None
    dropout: float | None = None
    seq_len: int | None = None  # default: the preset's context length
    batch_size: int = 16
    steps: int = 5000
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 200
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 200
    eval_windows: int = 64
    log_every: int = 10
    augment: bool = True
    seed: int = 0
    threads: int = 2  # torch CPU threads per process (0: torch's default)
    init: str | None = None  # start from these weights (a model folder or .pt) instead of random
    max_minutes: float | None = None  # stop cleanly (and save) after this much wall time in this invocation
    new_cycle: bool = True  # --resume with other --steps: a new warm-up + cosine cycle (false: move the cycle's end)
    composer_dropout: float = 0.0  # share of training windows whose composer token is replaced by `unknown` (CFG)
    decay_steps: int = 0  # 0: cosine over the whole cycle; N: constant lr, cosine over the cycle's last N steps (WSD)


def lr_at(step: int, cfg: TrainConfig, cycle_start: int, total: int) -> float:
    """Linear warm-up then cosine decay to ``lr * min_lr_ratio`` at ``total`` (one cycle from ``cycle_start``).

    With ``decay_steps`` the learning rate stays at its peak until the last ``decay_steps`` of the cycle
    (warm-up, stable, decay), so moving the cycle's end (``new_cycle=false``) starts the decay from where a run is.
    """
    into = step - cycle_start
    if into < cfg.warmup:
        return cfg.lr * (into + 1) / cfg.warmup
    decay_from = cycle_start + cfg.warmup
    if cfg.decay_steps:
        decay_from = max(decay_from, total - cfg.decay_steps)
    progress = min(1.0, max(0.0, (step - decay_from) / max(1, total - decay_from)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def model_config(cfg: TrainConfig, vocab_size: int) -> TransformerConfig:
    overrides = {f: getattr(cfg, f) for f in ("n_layer", "n_head", "d_model", "d_ff", "dropout")
                 if getattr(cfg, f) is not None}
    if cfg.seq_len is not None:
        overrides["max_seq_len"] = cfg.seq_len
    return preset_config(cfg.preset, vocab_size, **overrides)


def initial_weights(init_model: Transformer, config: TransformerConfig, source: str) -> dict:
    """The state dict that starts a run of shape ``config`` from ``init_model``: the same weights, or the
    model deepened (function-preserving) when ``config`` only asks for more layers."""
    have, want = init_model.config.to_dict(), config.to_dict()
    if have == want:
        return init_model.state_dict()
    if {k: v for k, v in have.items() if k != "n_layer"} == {k: v for k, v in want.items() if k != "n_layer"} \
            and want["n_layer"] > have["n_layer"]:
        return deepen(init_model, config.n_layer).state_dict()
    differ = ", ".join(f"{k} {have[k]} vs {want[k]}" for k in want if have.get(k) != want[k])
    raise ValueError(f"init weights {source} do not fit this run ({differ}); only n_layer may grow")


class _Training(Training):
    """The transformer's part of the training loop: windows of token pieces, cross-entropy, validation NLL."""

    def __init__(self, train_split: TokenSplit, val_split: TokenSplit, out: Path, cfg: TrainConfig, report=None):
        super().__init__(out, cfg, report)
        self.train_split, self.val_split = train_split, val_split
        self.tokens_seen, self.window_tokens = 0, 0
        self.schedule = {"cycle_start": 0, "total": cfg.steps}
        self.world = int(os.environ.get("WORLD_SIZE", "1"))

    def build(self, state):
        cfg = self.cfg
        self.mconf = TransformerConfig(**state["config"]) if state is not None else model_config(cfg, events.VOCAB_SIZE)
        self.seq_len = self.mconf.max_seq_len
        model = Transformer(self.mconf)
        self.prior = None  # the history of the init weights, if any
        if state is None and cfg.init:
            init_model, init_ckpt = load_model(Path(cfg.init))
            model.load_state_dict(initial_weights(init_model, self.mconf, cfg.init))
            self.prior = lineage(init_ckpt)
        model.to(self.device)
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95),
                                      fused=self.device.type == "cuda")
        self.val_windows = fixed_windows(self.val_split, cfg.eval_windows, self.seq_len) if self.main else []
        return model, optimizer

    def restore(self, state):
        self.tokens_seen, self.prior = state["tokens_seen"], state.get("prior")
        self.schedule = dict(state["scheduler"])
        if self.cfg.steps != self.schedule["total"]:  # another length: a new cycle from here, or the same one re-fitted
            self.schedule = {"cycle_start": self.step if self.cfg.new_cycle else self.schedule["cycle_start"],
                             "total": self.cfg.steps}

    def total_steps(self):
        return self.schedule["total"]

    def summary(self):
        return (f"model {self.model.num_params() / 1e6:.2f} M params, {self.mconf.n_layer}x{self.mconf.d_model}, "
                f"context {self.seq_len}; {len(self.train_split)} train pieces; device {self.device}; "
                f"run folder {self.out}")

    def lr_at(self, step):
        return lr_at(step, self.cfg, self.schedule["cycle_start"], self.schedule["total"])

    def batch_loss(self, net):
        cfg = self.cfg
        x, y = batch_from(random_batch(self.train_split, cfg.batch_size, self.seq_len, self.rng, cfg.augment,
                                       cfg.composer_dropout), self.device)
        with autocast(self.device):
            logits = net(x)
        n_tok = int((y != IGNORE).sum()) * self.world
        self.tokens_seen += n_tok
        self.window_tokens += n_tok
        return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE)

    def train_entry(self, lr, loss, elapsed):
        tok_s = self.window_tokens / max(elapsed, 1e-9)
        self.window_tokens = 0
        entry = {"kind": "train", "step": self.step, "tokens_seen": self.tokens_seen, "wall_s": round(self.wall_s, 1),
                 "train_loss": round(loss, 4), "lr": lr, "tok_s": round(tok_s)}
        eta = (self.end - self.step) * self.cfg.batch_size * self.seq_len * self.world / max(tok_s, 1e-9)
        return (entry, f"loss {loss:.3f} lr {lr:.2e} {tok_s / 1000:.1f}k tok/s",
                f"ETA {time.strftime('%H:%M:%S', time.gmtime(max(eta, 0)))}")

    def validate(self):
        val = mean_nll(self.model, self.val_windows, self.device)
        self.model.train()
        return {"val_nll": val}

    def val_entry(self, scores):
        train_loss = self.log[-1]["train_loss"] if self.log and "train_loss" in self.log[-1] else None
        return {"kind": "val", "step": self.step, "tokens_seen": self.tokens_seen, "wall_s": round(self.wall_s, 1),
                "val_nll": round(scores["val_nll"], 4), "train_loss": train_loss, "time": utc_now()}

    def val_note(self, scores):
        return (f"step {self.step}: val NLL {scores['val_nll']:.4f} nats/event (best {self.best:.4f}), "
                f"{self.tokens_seen / 1e6:.2f} M tokens, {self.wall_s / 60:.1f} min")

    def checkpoint_extras(self):
        return {"model": self.model.state_dict(), "config": self.mconf.to_dict(), "tokenizer": tokenizer_info(),
                "tokens_seen": self.tokens_seen, "scheduler": self.schedule, "prior": self.prior}

    def record(self, entry):
        """metrics.jsonl gets every entry; val.csv the validation curve (wall clock and tokens seen)."""
        super().record(entry)
        if entry["kind"] == "val":
            path = self.out / "val.csv"
            new = not path.exists()
            with open(path, "a", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                if new:
                    writer.writerow(["step", "tokens_seen", "wall_s", "val_nll", "train_loss", "time"])
                writer.writerow([entry["step"], entry["tokens_seen"], entry["wall_s"], entry["val_nll"],
                                 entry["train_loss"], entry["time"]])


def train(train_split: TokenSplit, val_split: TokenSplit, out: Path, cfg: TrainConfig, *, resume: bool = False,
          device: str = "auto", stop_after: int | None = None, report=None) -> Path:
    """Train (or resume) in run folder ``out``; returns the path of the best checkpoint.

    ``stop_after`` ends this invocation after that step (the schedule still targets ``cfg.steps``); ``report``
    receives the progress (see :class:`~maestro_cli.models.loop.LineReport`, the default).
    """
    return _Training(train_split, val_split, out, cfg, report).run(resume=resume, device=device, stop_after=stop_after)


