"""Training, checkpoints and NLL evaluation for :mod:`maestro_cli.models.transformer` (plain PyTorch).

Data is a flat token array with one ``START, events..., END`` run per piece (the tokenizer's cache). A training
example is the piece's composer token followed by a random window of the piece, augmented the Music-Transformer
way (transpose ±3 semitones, time stretch ±2.5/5 %). The training loop (resume, DDP, signals, checkpoints,
progress) is :mod:`maestro_cli.models.loop`; this trainer's checkpoints add the tokenizer, the tokens seen, the
learning-rate cycle and the history of ``init`` weights (``prior``), and its validation curve goes to ``val.csv``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from maestro_cli.models.loop import Training, utc_now
from maestro_cli.models.runtime import find_checkpoint, pick_device, save_atomic
from maestro_cli.models.transformer import Transformer, TransformerConfig, deepen, preset_config
from maestro_cli.tokens import performance as events

IGNORE = -100


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


@dataclass
class TokenSplit:
    """The pieces of one split: flat tokens, per-piece offset, length and composer token id."""

    tokens: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    composers: np.ndarray

    @classmethod
    def from_index(cls, tokens: np.ndarray, index: list[dict]) -> "TokenSplit":
        return cls(tokens, np.array([p["offset"] for p in index], np.int64),
                   np.array([p["length"] for p in index], np.int64),
                   np.array([events.composer_token(p.get("composer_class")) for p in index], np.int64))

    def __len__(self) -> int:
        return len(self.offsets)

    def piece(self, i: int) -> np.ndarray:
        return np.asarray(self.tokens[self.offsets[i]:self.offsets[i] + self.lengths[i]], dtype=np.int64)


def window(split: TokenSplit, i: int, start: int, seq_len: int, rng: np.random.Generator | None) -> np.ndarray:
    """Composer token + ``seq_len`` tokens of piece ``i`` from ``start`` (augmented if ``rng``), PAD-filled."""
    end = split.offsets[i] + split.lengths[i]
    lo = split.offsets[i] + start
    raw = np.asarray(split.tokens[lo:min(end, lo + seq_len + seq_len // 8 + 8)], dtype=np.uint16)
    if rng is not None:
        shifted = events.transpose(raw, int(rng.integers(-3, 4)))
        raw = raw if shifted is None else shifted
        raw = events.stretch(raw, float(rng.choice([0.95, 0.975, 1.0, 1.025, 1.05])))
    out = np.full(seq_len + 1, events.PAD, np.int64)
    out[0] = split.composers[i]
    body = raw[:seq_len].astype(np.int64)
    out[1:1 + len(body)] = body
    return out


def batch_from(windows: list[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.from_numpy(np.stack(windows))
    x, y = w[:, :-1].clone(), w[:, 1:].clone()
    y[y == events.PAD] = IGNORE
    return x.to(device), y.to(device)


def random_batch(split: TokenSplit, batch: int, seq_len: int, rng: np.random.Generator, augment: bool,
                 composer_dropout: float = 0.0):
    """Pieces drawn by length, uniform window starts; ``composer_dropout`` of them get the `unknown` composer."""
    p = split.lengths / split.lengths.sum()
    out = []
    for i in rng.choice(len(split), size=batch, p=p):
        start = int(rng.integers(0, max(int(split.lengths[i]) - seq_len, 0) + 1))
        out.append(window(split, int(i), start, seq_len, rng if augment else None))
        if composer_dropout > 0 and rng.random() < composer_dropout:
            out[-1][0] = events.composer_token(None)
    return out


def fixed_windows(split: TokenSplit, n: int, seq_len: int, seed: int = 1234) -> list[np.ndarray]:
    """A fixed, seed-determined set of un-augmented windows (cheap, comparable validation)."""
    return random_batch(split, n, seq_len, np.random.default_rng(seed), augment=False)


def autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


@torch.no_grad()
def mean_nll(model: Transformer, windows: list[np.ndarray], device, batch: int = 16) -> float:
    """Mean NLL per event (nats) over the non-PAD targets of ``windows``."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        x, y = batch_from(windows[i:i + batch], device)
        with autocast(device):
            logits = model(x)
        total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE,
                                 reduction="sum").item()
        count += int((y != IGNORE).sum())
    return total / max(count, 1)


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


def tokenizer_info() -> dict:
    return {"name": "performance", "version": events.TOKENIZER_VERSION, "vocab": events.vocab()}


def load_model(path: Path, device="cpu") -> tuple[Transformer, dict]:
    """The model of a checkpoint (eval mode) and the checkpoint dict."""
    ckpt = torch.load(find_checkpoint(path), map_location="cpu", weights_only=True)
    model = Transformer(TransformerConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt


def lineage(ckpt: dict) -> dict:
    """The whole training history of a checkpoint's weights: the runs it was ``init``-ed from, then its own.

    Returns the total ``step``, ``tokens_seen`` and ``wall_s`` and the ``log`` with every entry counted on
    from the runs before it (a run started with ``-o init`` keeps its own counters from 0).
    """
    before = ckpt.get("prior") or {"step": 0, "tokens_seen": 0, "wall_s": 0.0, "log": []}
    counters = ("step", "tokens_seen", "wall_s")
    own = [{**entry, **{key: entry[key] + before[key] for key in counters}} for entry in ckpt.get("log", [])]
    for entry in own:
        entry["wall_s"] = round(entry["wall_s"], 1)
    return {**{key: before[key] + ckpt.get(key, 0) for key in counters}, "log": before["log"] + own}


def resume_config(out: Path) -> dict:
    """The training options stored in ``out/last.pt`` (a FileNotFoundError if there is none)."""
    path = Path(out) / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(f"nothing to resume: {path} does not exist")
    known = {f.name for f in fields(TrainConfig)}
    stored = torch.load(path, map_location="cpu", weights_only=True).get("train_config", {})
    return {key: value for key, value in stored.items() if key in known}


def export_model(checkpoint: Path, folder: Path) -> Path:
    """Ship a checkpoint: ``folder/model.pt`` (weights and metadata, no optimizer or RNG state),
    ``config.json`` and ``vocab.json``; returns ``folder``."""
    ckpt = torch.load(find_checkpoint(Path(checkpoint)), map_location="cpu", weights_only=True)
    keep = ("model", "config", "tokenizer", "step", "tokens_seen", "wall_s", "best_val", "train_config", "log",
            "prior")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_atomic({key: ckpt[key] for key in keep if key in ckpt}, folder / "model.pt")
    (folder / "config.json").write_text(json.dumps(ckpt["config"], indent=1) + "\n", encoding="utf-8")
    (folder / "vocab.json").write_text(json.dumps(ckpt["tokenizer"], indent=1, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    return folder


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


@torch.no_grad()
def piece_nll(model: Transformer, tokens: np.ndarray, composer: int, device, batch: int = 8) -> tuple[float, int]:
    """Summed NLL (nats) and count of the events + END of one piece (``START ... END``), sliding windows.

    Each window is the composer token + ``max_seq_len - 1`` piece tokens; windows advance by half a context,
    and every target is scored once, by the first window that holds it with the most context available.
    """
    L = model.config.max_seq_len
    stride = max(1, L // 2)
    n = len(tokens)
    starts = list(range(0, max(n - L, 0) + 1, stride))
    if starts[-1] + L < n:
        starts.append(n - L)
    total, count, scored = 0.0, 0, 0  # targets < scored are done (START, index 0, is never scored)
    plan = []
    for st in starts:
        first = max(st, scored, 1)
        last = min(st + L, n)
        if last > first:
            plan.append((st, first, last))
            scored = last
    model.eval()
    for i in range(0, len(plan), batch):
        chunk = plan[i:i + batch]
        xs = np.full((len(chunk), L), events.PAD, np.int64)
        ys = np.full((len(chunk), L), IGNORE, np.int64)
        for row, (st, first, last) in enumerate(chunk):
            body = tokens[st:min(st + L - 1, n)]
            xs[row, 0], xs[row, 1:1 + len(body)] = composer, body
            ys[row, first - st:last - st] = tokens[first:last]
        x, y = torch.from_numpy(xs).to(device), torch.from_numpy(ys).to(device)
        with autocast(device):
            logits = model(x)
        total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE,
                                 reduction="sum").item()
        count += int((y != IGNORE).sum())
    return total, count


def split_nll(model: Transformer, split: TokenSplit, device="cpu", *, shuffle_composer: bool = False,
              max_pieces: int | None = None, seed: int = 0) -> dict:
    """NLL per event over whole pieces of a split; ``shuffle_composer`` gives each piece another composer's token."""
    rng = np.random.default_rng(seed)
    order = np.arange(len(split))
    if max_pieces is not None and max_pieces < len(split):
        order = np.sort(rng.choice(len(split), size=max_pieces, replace=False))
    present = np.unique(split.composers)
    total, count = 0.0, 0
    for i in order:
        composer = int(split.composers[i])
        if shuffle_composer and len(present) > 1:
            composer = int(rng.choice(present[present != composer]))
        t, c = piece_nll(model, split.piece(int(i)), composer, torch.device(device) if isinstance(device, str)
                         else device)
        total, count = total + t, count + c
    nll = total / max(count, 1)
    return {"nll_per_event": nll, "perplexity": math.exp(nll), "events": count, "pieces": len(order)}


def nll_on_split(checkpoint: Path, root: Path, split: str = "test", *, max_pieces: int | None = None,
                 shuffle_composer: bool = False, device: str = "cpu", threads: int | None = None) -> dict:
    """NLL per event (nats) and perplexity of a checkpoint on a MAESTRO split (builds the token cache if needed)."""
    if threads:
        torch.set_num_threads(threads)
    model, ckpt = load_model(Path(checkpoint), pick_device(device))
    data = load_split(Path(root), split)
    result = split_nll(model, data, next(model.parameters()).device, shuffle_composer=shuffle_composer,
                       max_pieces=max_pieces)
    return {"checkpoint": str(find_checkpoint(Path(checkpoint))), "split": split, "step": ckpt.get("step"),
            "shuffled_composer": shuffle_composer, **result}


def load_split(root: Path, split: str, jobs: int = 1) -> TokenSplit:
    """One split of a ``performance`` token cache: ``root`` is the cache itself or a MAESTRO root (cache built
    on first use, under ``$MAESTRO_HOME/cache``)."""
    from maestro_cli.errors import MaestroError
    from maestro_cli.tokens import files as tokenize_io
    from maestro_cli.tokens.performance import PerformanceTokenizer

    tokenizer = PerformanceTokenizer()
    is_cache = (root / tokenize_io.VOCAB_FILE).is_file()
    cache = root if is_cache else tokenize_io.cache_dir_for(root, "performance")
    try:
        tokens, index = tokenize_io.load_cache(cache, split)
        record = json.loads((cache / tokenize_io.VOCAB_FILE).read_text(encoding="utf-8"))
        stale = record["vocab"] != tokenizer.vocab
    except (MaestroError, OSError, ValueError, KeyError):
        if is_cache:
            raise
        stale = True
    if stale and is_cache:
        raise MaestroError("token cache of another vocabulary; rebuild it with `maestro tokenize --dataset`", cache)
    if stale:
        tokenize_io.build_cache(tokenizer, root, cache, jobs)
        tokens, index = tokenize_io.load_cache(cache, split)
    return TokenSplit.from_index(tokens, index)
