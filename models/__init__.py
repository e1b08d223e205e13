"""Shipped checkpoints, one folder per model (weights, config, tokenizer, MODEL_CARD.md)."""

from pathlib import Path

MODELS_DIR = Path(__file__).parent
