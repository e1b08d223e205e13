"""The shipped default generator (models/maestro-transformer): loads, is documented, and generates quickly."""

from __future__ import annotations

import json
import time

import torch

from maestro_cli import events
from maestro_cli.backends.transformer import TransformerGenerator, TransformerOptions, default_checkpoint
from maestro_cli.stages.generate import GenerationRequest


def test_shipped_model_is_complete_and_documented():
    folder = default_checkpoint()
    assert (folder / "model.pt").stat().st_size <= 50 * 1024 * 1024
    ckpt = torch.load(folder / "model.pt", weights_only=True)
    assert "optimizer" not in ckpt and ckpt["tokenizer"]["vocab"] == events.vocab()
    assert json.loads((folder / "config.json").read_text()) == ckpt["config"]
    metrics = json.loads((folder / "metrics.json").read_text())
    # far better than a uniform guess over the vocabulary (ln 413 = 6.0), and the composer token helps
    assert metrics["test_nll"]["nll_per_event"] < 4.0
    assert metrics["test_nll"]["nll_per_event"] < metrics["test_nll_shuffled_composer"]["nll_per_event"]
    card = (folder / "MODEL_CARD.md").read_text(encoding="utf-8")
    for needle in ("CC BY-NC-SA 4.0", "maestro train transformer", "Validation NLL over time", "Frédéric Chopin",
                   f"{metrics['test_nll']['nll_per_event']:.3f}"):
        assert needle in card


def test_shipped_model_generates_five_seconds_for_two_composers():
    generator = TransformerGenerator(TransformerOptions(device="cpu", threads=1))
    started = time.process_time()  # CPU seconds: a fair measure of the work on a shared machine
    pieces = {composer: generator.generate(GenerationRequest(composer=composer, n=1, seconds=5.0, seed=1))[0]
              for composer in ("Chopin", "Bach")}
    assert time.process_time() - started < 30
    assert pieces["Chopin"] != pieces["Bach"]
    for midi in pieces.values():
        notes = events.midi_notes(midi)
        assert len(notes) >= 5 and notes["end_s"].max() <= 5.0 + 2.0
        assert 21 <= notes["pitch"].min() and notes["pitch"].max() <= 108  # the piano's range
