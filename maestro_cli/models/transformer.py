"""A decoder-only Transformer over performance events, in the nanoGPT spirit.

Pre-norm blocks, rotary position embeddings (RoPE), ``F.scaled_dot_product_attention``, tied input/output
embeddings, a pre-allocated key/value cache for sampling, and batched top-k / top-p / temperature sampling.
Composer conditioning is a token at position 0 of every sequence; the model itself knows nothing of music
beyond the ids it is told to never sample (``banned``) and which ids advance time (``time_shift``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TransformerConfig:
    vocab_size: int = 512
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 256
    d_ff: int = 1024
    max_seq_len: int = 512
    dropout: float = 0.0
    rope_base: float = 10000.0

    def to_dict(self) -> dict:
        return asdict(self)


#: Named sizes. ``tiny`` is for tests, ``small`` trains on a laptop CPU, ``base`` is Music-Transformer sized.
PRESETS: dict[str, dict] = {
    "tiny": dict(n_layer=2, n_head=2, d_model=64, d_ff=256, max_seq_len=128),
    "small": dict(n_layer=4, n_head=4, d_model=256, d_ff=1024, max_seq_len=512),
    "base": dict(n_layer=6, n_head=8, d_model=512, d_ff=2048, max_seq_len=2048, dropout=0.1),
}


def preset_config(name: str, vocab_size: int, **overrides) -> TransformerConfig:
    """The config of preset ``name`` for a vocabulary, with field overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}'; known: {', '.join(PRESETS)}")
    return TransformerConfig(vocab_size=vocab_size, **{**PRESETS[name], **overrides})


def rope_tables(seq_len: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables of shape (seq_len, head_dim // 2)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the last dim of x: (B, H, T, D) by per-position angles."""
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).type_as(x)


class KVCache:
    """Pre-allocated keys and values for every layer: (layers, B, H, max_len, head_dim)."""

    def __init__(self, config: TransformerConfig, batch: int, max_len: int, device, dtype=torch.float32):
        head_dim = config.d_model // config.n_head
        shape = (config.n_layer, batch, config.n_head, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store new keys/values at the current position; return all keys/values so far."""
        start, end = self.length, self.length + k.size(2)
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


class Attention(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.dropout = config.dropout

    def forward(self, x, cos, sin, cache: KVCache | None = None, layer: int = 0):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.update(layer, k, v)
        if past == 0:
            mask, causal = None, True
        elif T == 1:
            mask, causal = None, False
        else:  # several new positions after a prefix: each sees the prefix and the new ones before it
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
            causal = False
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, dropout_p=drop)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attn = Attention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(nn.Linear(config.d_model, config.d_ff), nn.GELU(),
                                 nn.Linear(config.d_ff, config.d_model), nn.Dropout(config.dropout))

    def forward(self, x, cos, sin, cache=None, layer=0):
        x = x + self.attn(self.norm1(x), cos, sin, cache, layer)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied embeddings
        cos, sin = rope_tables(config.max_seq_len, config.d_model // config.n_head, config.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        for name, param in self.named_parameters():  # GPT-2 scaled init of residual projections
            if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(param, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Logits (B, T, vocab) for token ids (B, T); with a cache, ``idx`` continues the cached prefix."""
        start = cache.length if cache is not None else 0
        end = start + idx.size(1)
        if end > self.config.max_seq_len:
            raise ValueError(f"sequence of {end} tokens exceeds max_seq_len {self.config.max_seq_len}")
        cos, sin = self.rope_cos[start:end], self.rope_sin[start:end]
        x = self.drop(self.embed(idx))
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, cache, i)
        if cache is not None:
            cache.length = end
        return self.head(self.norm(x))

    @torch.no_grad()
    def generate(self, prompts: torch.Tensor, max_new: int, *, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, generator: torch.Generator | None = None,
                 banned: list[int] | None = None, stop: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 use_cache: bool = True, keep: int = 1, unconditional: torch.Tensor | None = None,
                 guidance: float = 1.0, constraint: Constraint | None = None) -> list[list[int]]:
        """Sample up to ``max_new`` tokens after each prompt row (prompts: (B, T), same length).

        ``banned`` ids are never sampled. ``stop(tokens)`` gets the last sampled column (B,) and returns a bool
        mask of rows that are finished after it; finished rows stop growing. When the context fills up, the
        first ``keep`` tokens (the composer token) and the most recent half window are re-encoded.
        Classifier-free guidance: with ``unconditional`` prompts (B, T) and ``guidance`` W != 1, both streams run
        as one batch of 2B rows sharing every sampled token, and the logits are ``u + W * (c - u)``; W = 1 runs
        the conditional stream alone. A ``constraint`` adjusts the logits before sampling and sees every
        sampled column. Returns the new tokens of each row (prompt excluded).
        """
        self.eval()
        B, device = prompts.size(0), prompts.device
        limit = self.config.max_seq_len
        guided = unconditional is not None and guidance != 1.0
        seq = torch.cat([prompts, unconditional]) if guided else prompts
        out: list[list[int]] = [[] for _ in range(B)]
        done = torch.zeros(B, dtype=torch.bool, device=device)
        cache = KVCache(self.config, seq.size(0), limit, device) if use_cache else None
        pending = seq  # tokens not yet seen by the model
        for _ in range(max_new):
            if seq.size(1) > limit:  # slide: keep the composer token and the most recent half context
                seq = torch.cat([seq[:, :keep], seq[:, -(limit // 2 - keep):]], dim=1)
                pending = seq
                if cache is not None:
                    cache.length = 0
            logits = self(pending, cache)[:, -1] if cache is not None else self(seq)[:, -1]
            if guided:
                logits = logits[B:] + guidance * (logits[:B] - logits[B:])
            if constraint is not None:
                logits = constraint.apply(logits.float())
            nxt = sample(logits, temperature, top_k, top_p, generator, banned)
            if constraint is not None:
                constraint.update(nxt)
            column = torch.cat([nxt, nxt]) if guided else nxt
            seq = torch.cat([seq, column[:, None]], dim=1)
            pending = column[:, None]
            for row in torch.nonzero(~done).flatten().tolist():
                out[row].append(int(nxt[row]))
            if stop is not None:
                done |= stop(nxt)
            if bool(done.all()):
                break
        return out


def deepen(model: Transformer, n_layer: int) -> Transformer:
    """A copy of ``model`` with ``n_layer`` blocks that computes the same function (depth growth, as in stacking).

    The old blocks keep their order, spread evenly; each new block is a copy of the old block before it with
    its residual output projections (attention and feed-forward) zeroed, so it starts as the identity and
    learns from there.
    """
    old = model.config.n_layer
    if n_layer < old:
        raise ValueError(f"cannot deepen a {old}-layer model to {n_layer} layers")
    grown = Transformer(TransformerConfig(**{**model.config.to_dict(), "n_layer": n_layer}))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("blocks.")}
    placed = set()
    for j in range(n_layer):
        source = j * old // n_layer
        block = {k: v.clone() for k, v in model.blocks[source].state_dict().items()}
        if source in placed:
            for name in ("attn.proj.weight", "mlp.2.weight", "mlp.2.bias"):
                block[name] = torch.zeros_like(block[name])
        placed.add(source)
        state.update({f"blocks.{j}.{k}": v for k, v in block.items()})
    grown.load_state_dict(state)
    return grown


class Constraint(Protocol):
    """Sampling-time rule over token ids: adjusts logits (B, V) and follows the sampled tokens (B,)."""

    def apply(self, logits: torch.Tensor) -> torch.Tensor: ...

    def update(self, tokens: torch.Tensor) -> None: ...


def sample(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           generator: torch.Generator | None = None, banned: list[int] | None = None) -> torch.Tensor:
    """One id per row of ``logits`` (B, V) with temperature, top-k and nucleus (top-p) filtering."""
    logits = logits.float() / max(temperature, 1e-5)
    if banned:
        logits[:, banned] = -float("inf")
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        remove = cumulative - sorted_logits.softmax(-1) > top_p  # keep the smallest set reaching top_p
        sorted_logits = sorted_logits.masked_fill(remove, -float("inf"))
        logits = torch.full_like(logits, -float("inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
