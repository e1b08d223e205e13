"""Sampling with the shipped generator: the note-hold limit, classifier-free guidance, fresh and fixed seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from maestro_cli.backends.transformer import TransformerGenerator, TransformerOptions
from maestro_cli.cli.generate import fresh_seed
from maestro_cli.models.sampling import FLOOR, NoteHold
from maestro_cli.protocols import GenerationRequest
from maestro_cli.symbolic.midi import read_midi
from maestro_cli.tokens import performance as events
from tests.helpers import run_maestro

torch.set_num_threads(1)


def generate(max_hold: float = 12.0, **kwargs) -> list[bytes]:
    request = GenerationRequest(**{"composer": "Chopin", "n": 2, "seconds": 4.0, "seed": 1, "guidance": 1.0, **kwargs})
    return TransformerGenerator(TransformerOptions(device="cpu", threads=1, max_hold=max_hold)).generate(request)


def durations(pieces: list[bytes]) -> np.ndarray:
    return np.concatenate([n["end_s"] - n["start_s"] for n in (read_midi(piece).sounding() for piece in pieces)])


def test_note_hold_raises_then_forces_the_note_off():
    hold = NoteHold(1, max_hold_s=2.0, hazard_s=1.0, slope=2.0)
    for token in (events.NOTE_ON + 60, events.TIME_SHIFT + 99, events.TIME_SHIFT + 49):  # 1.5 s held
        hold.update(torch.tensor([token]))
    start = torch.zeros(1, events.VOCAB_SIZE)
    start[0, events.NOTE_OFF + 60] = -20.0  # the model would never end it
    logits = hold.apply(start)
    assert logits[0, events.NOTE_OFF + 60] == pytest.approx(-FLOOR + 1.0)  # floor: 0.5 s past onset x 2 per s
    assert logits[0, events.NOTE_OFF + 61] == 0
    shifts = logits[0, events.TIME_SHIFT:events.VELOCITY]
    assert torch.isfinite(shifts[:50]).all() and torch.isinf(shifts[50:]).all()  # no shift past 2.0 s
    hold.update(torch.tensor([events.TIME_SHIFT + 49]))  # 2.0 s: only the note-off may come
    logits = hold.apply(torch.zeros(1, events.VOCAB_SIZE))
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [events.NOTE_OFF + 60]
    hold.update(torch.tensor([events.NOTE_OFF + 60]))
    assert torch.isfinite(hold.apply(torch.zeros(1, events.VOCAB_SIZE))).all()  # silence: no constraint


@pytest.mark.slow
def test_shipped_model_holds_no_note_past_the_cap():
    free = np.concatenate([durations(generate(max_hold=0, seed=seed)) for seed in (1, 2, 3)])
    held = np.concatenate([durations(generate(max_hold=1.5, seed=seed)) for seed in (1, 2, 3)])
    assert (free > 1.5).sum() >= 3  # without the limit these seeds hold notes longer
    assert held.max() <= 1.5 + 1e-9
    assert len(held) > 0.7 * len(free)  # the cap ends notes without thinning the music (one seed alone: 0.6-1.9x)


@pytest.mark.slow
def test_guidance_one_is_the_plain_path_and_other_weights_change_the_music():
    short = dict(n=1, seconds=2.0)
    plain = generate(**short)
    assert generate(guidance=1.0, **short) == plain
    assert generate(guidance=3.0, **short) != plain
    # W = 0 keeps only the unconditional stream: the same music as the `unknown` composer, sampled alone
    assert generate(guidance=0.0, **short) == generate(composer=None, **short)


def test_fresh_seed_avoids_existing_names(tmp_path, monkeypatch):
    draws = iter([5, 5, 9])
    monkeypatch.setattr("secrets.randbelow", lambda _: next(draws))
    (tmp_path / "chopin_seed5_01.mid").write_bytes(b"")
    assert fresh_seed("chopin", 2, tmp_path) == 9


@pytest.mark.slow
def test_cli_draws_fresh_seeds_and_reproduces_them(tmp_path):
    runs = []
    for _ in range(2):
        result = run_maestro("generate", "-c", "chopin", "--seconds", "1", "--json", "--out-dir", str(tmp_path),
                             "-O", "threads=1")
        assert result.code == 0, result.stderr
        record = json.loads(result.stdout)
        assert f"seed {record['seed']} (pass --seed {record['seed']} to reproduce)" in result.stderr
        assert Path(record["path"]).name == f"chopin_seed{record['seed']}_00.mid"
        runs.append(record)
    assert runs[0]["seed"] != runs[1]["seed"] and runs[0]["path"] != runs[1]["path"]
    again = run_maestro("generate", "-c", "chopin", "--seconds", "1", "--seed", str(runs[0]["seed"]),
                        "--out-dir", str(tmp_path / "again"), "-O", "threads=1")
    assert again.code == 0 and "seed" not in again.stderr
    assert Path(again.stdout.strip()).read_bytes() == Path(runs[0]["path"]).read_bytes()
