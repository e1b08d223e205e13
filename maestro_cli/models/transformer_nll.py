"""NLL evaluation of :mod:`maestro_cli.models.transformer`: fixed windows (validation) and whole pieces (test)."""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from maestro_cli.models.runtime import find_checkpoint, pick_device
from maestro_cli.models.transformer import Transformer
from maestro_cli.models.transformer_checkpoint import load_model
from maestro_cli.models.transformer_data import IGNORE, TokenSplit, batch_from, load_split
from maestro_cli.tokens import performance as events


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
