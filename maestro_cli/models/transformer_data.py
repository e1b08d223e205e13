"""Training data of :mod:`maestro_cli.models.transformer`: a split of the token cache and the windows cut from it.

Data is a flat token array with one ``START, events..., END`` run per piece (the tokenizer's cache). A training
example is the piece's composer token followed by a random window of the piece, augmented the Music-Transformer
way (transpose ±3 semitones, time stretch ±2.5/5 %).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from maestro_cli.tokens import performance as events

IGNORE = -100  # the target of PAD positions: no loss


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
