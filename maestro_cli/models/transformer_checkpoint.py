"""Checkpoints of :mod:`maestro_cli.models.transformer`: loading, the lineage of ``init`` weights, and export."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from maestro_cli.models.runtime import find_checkpoint, save_atomic
from maestro_cli.models.transformer import Transformer, TransformerConfig
from maestro_cli.tokens import performance as events


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
    from the runs before it (a run started with ``-O init`` keeps its own counters from 0).
    """
    before = ckpt.get("prior") or {"step": 0, "tokens_seen": 0, "wall_s": 0.0, "log": []}
    counters = ("step", "tokens_seen", "wall_s")
    own = [{**entry, **{key: entry[key] + before[key] for key in counters}} for entry in ckpt.get("log", [])]
    for entry in own:
        entry["wall_s"] = round(entry["wall_s"], 1)
    return {**{key: before[key] + ckpt.get(key, 0) for key in counters}, "log": before["log"] + own}


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
