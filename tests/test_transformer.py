"""The transformer generator: model, training loop, checkpoints, sampling, DDP and the CLI (tiny preset)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from maestro_cli.models import transformer_checkpoint as tc
from maestro_cli.models import transformer_data as td
from maestro_cli.models import transformer_nll as tn
from maestro_cli.models import transformer_train as tt
from maestro_cli.models.transformer import KVCache, Transformer, deepen, preset_config
from maestro_cli.symbolic.midi import read_midi
from maestro_cli.symbolic.notes import make_notes
from maestro_cli.tokens import performance as events
from tests.helpers import run_maestro

torch.set_num_threads(1)


def scale_piece(base: int, n: int = 12) -> np.ndarray:
    """START, an ascending run of ``n`` notes from ``base`` (100 ms each), END."""
    pitches = np.arange(base, base + n)
    starts = np.arange(n) * 0.1
    notes = make_notes(pitches, starts, starts + 0.1, np.full(n, 80))
    return np.concatenate([[events.START], events.notes_to_events(notes), [events.END]]).astype(np.uint16)


def make_split(pieces: list[np.ndarray], composers: list[str]) -> td.TokenSplit:
    offsets = np.cumsum([0] + [len(p) for p in pieces[:-1]])
    index = [{"offset": int(o), "length": len(p), "composer_class": c} for o, p, c in zip(offsets, pieces, composers)]
    return td.TokenSplit.from_index(np.concatenate(pieces), index)


TWO = make_split([scale_piece(60), scale_piece(40)], ["Frédéric Chopin", "Johann Sebastian Bach"])
TINY = dict(preset="tiny", seq_len=64, batch_size=4, warmup=5, eval_windows=4, log_every=5, threads=1)


def write_cache(folder: Path, split: td.TokenSplit) -> Path:
    """A token cache folder (as `maestro tokenize --dataset` writes) holding ``split`` as train and validation."""
    from maestro_cli.tokens.files import VOCAB_FILE, vocab_record
    from maestro_cli.tokens.performance import PerformanceTokenizer

    folder.mkdir(parents=True)
    (folder / VOCAB_FILE).write_text(json.dumps(vocab_record(PerformanceTokenizer())), encoding="utf-8")
    names = {c: n for n, c in zip(events.COMPOSER_NAMES, range(events.COMPOSER, events.VOCAB_SIZE))}
    index = [{"file": f"p{i}.midi", "composer": names[int(c)], "composer_class": names[int(c)], "offset": int(o),
              "length": int(n)} for i, (o, n, c) in enumerate(zip(split.offsets, split.lengths, split.composers))]
    for name in ("train", "validation"):
        np.asarray(split.tokens, "<u2").tofile(folder / f"{name}.u16")
        (folder / f"{name}.index.json").write_text(json.dumps(index), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory) -> Path:
    """The tiny preset trained on two short pieces until it knows them."""
    out = tmp_path_factory.mktemp("overfit")
    cfg = tt.TrainConfig(**{**TINY, "steps": 150, "eval_every": 150, "lr": 3e-3, "augment": False})
    tt.train(TWO, TWO, out, cfg, device="cpu")
    return out


def test_tiny_preset_overfits_two_pieces(overfit_run):
    model, _ = tc.load_model(overfit_run)
    windows = [td.window(TWO, i, 0, 64, None) for i in range(2)]
    assert tn.mean_nll(model, windows, torch.device("cpu")) < 0.3
    log = [json.loads(line) for line in (overfit_run / "metrics.jsonl").read_text().splitlines()]
    assert log[0]["kind"] == "train" and log[0]["train_loss"] > 3.0
    assert log[-1]["kind"] == "val" and log[-1]["val_nll"] < 0.3


def test_composer_token_changes_the_distribution(overfit_run):
    """Both pieces open with START and the same velocity: only the composer token tells which note follows."""
    model, _ = tc.load_model(overfit_run)
    assert (TWO.piece(0)[:2] == TWO.piece(1)[:2]).all() and TWO.piece(0)[2] != TWO.piece(1)[2]
    for i, j in ((0, 1), (1, 0)):
        x = torch.tensor([[int(TWO.composers[i]), *TWO.piece(i)[:2]]])
        probs = model(x)[0, -1].softmax(-1)
        assert probs[int(TWO.piece(i)[2])] > 0.5 > 0.2 > probs[int(TWO.piece(j)[2])]


def test_save_load_and_export_give_identical_logits(overfit_run, tmp_path):
    model, ckpt = tc.load_model(overfit_run / "last.pt")
    fresh = Transformer(model.config)
    fresh.load_state_dict(ckpt["model"])
    folder = tc.export_model(overfit_run / "best.pt", tmp_path / "shipped")
    shipped, meta = tc.load_model(folder)
    assert "optimizer" not in meta and (folder / "config.json").is_file() and (folder / "vocab.json").is_file()
    x = torch.from_numpy(td.window(TWO, 0, 0, 64, None)[None, :-1])
    best, _ = tc.load_model(overfit_run / "best.pt")
    assert torch.equal(model(x), fresh.eval()(x))
    assert torch.equal(best(x), shipped(x))


def test_resume_matches_an_uninterrupted_run(tmp_path):
    cfg = tt.TrainConfig(**{**TINY, "steps": 8, "eval_every": 4})
    tt.train(TWO, TWO, tmp_path / "a", cfg, device="cpu")
    tt.train(TWO, TWO, tmp_path / "b", cfg, device="cpu", stop_after=4)
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["step"] == 4
    tt.train(TWO, TWO, tmp_path / "b", cfg, device="cpu", resume=True)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 8
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    curve = (tmp_path / "b" / "val.csv").read_text().splitlines()
    assert curve[0].startswith("step,tokens_seen,wall_s,val_nll") and len(curve) == 3


def test_kv_cache_logits_equal_the_full_forward_pass():
    torch.manual_seed(0)
    model = Transformer(preset_config("tiny", events.VOCAB_SIZE)).eval()
    x = torch.randint(0, events.NUM_EVENTS, (3, 50))
    full = model(x)
    cache = KVCache(model.config, 3, model.config.max_seq_len, "cpu")
    parts = [model(x[:, :20], cache), model(x[:, 20:21], cache), model(x[:, 21:], cache)]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)
    # sampling takes the same path with and without the cache, across a context slide
    runs = [model.generate(x[:, :5], model.config.max_seq_len + 20, generator=torch.Generator().manual_seed(1),
                           use_cache=use_cache) for use_cache in (True, False)]
    assert runs[0] == runs[1] and len(set(runs[0][0])) > 20


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    tt.train(TWO, TWO, out, tt.TrainConfig(**{**TINY, "steps": 2, "eval_every": 2}), device="cpu")
    return out


def generate(checkpoint: Path, **kwargs) -> list[bytes]:
    from maestro_cli.backends.transformer import TransformerGenerator, TransformerOptions
    from maestro_cli.protocols import GenerationRequest

    request = GenerationRequest(**{"n": 2, "seconds": 2.0, "checkpoint": checkpoint, **kwargs})
    return TransformerGenerator(TransformerOptions(device="cpu", threads=1)).generate(request)


def test_same_seed_gives_byte_identical_midi(tiny_checkpoint):
    first = generate(tiny_checkpoint, composer="Chopin", seed=7)
    assert first == generate(tiny_checkpoint, composer="Chopin", seed=7)
    assert first != generate(tiny_checkpoint, composer="Chopin", seed=8)
    assert first[0] != first[1]  # the batch rows are different samples
    for midi in first:
        notes = read_midi(midi).sounding()
        assert len(notes) > 0 and notes["end_s"].max() <= 2.0 + 1.0


def test_primer_is_continued(tiny_checkpoint, tmp_path):
    primer = tmp_path / "primer.mid"
    primer.write_bytes(events.decode_to_midi(scale_piece(60)))
    out = generate(tiny_checkpoint, composer="Bach", primer=primer, n=1, seconds=1.0)
    notes = read_midi(out[0]).sounding()
    assert list(notes["pitch"][:12]) == list(range(60, 72))


@pytest.mark.slow
def test_ddp_two_gloo_processes(tmp_path):
    """`torchrun --nproc_per_node 2` on CPU: both ranks train in lock step, rank 0 writes the run folder."""
    cache = write_cache(tmp_path / "cache", TWO)
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "maestro_cli", "train", "transformer",
           "--data", str(cache), "--out", str(tmp_path / "run"), "--steps", "3", "--device", "cpu",
           *[f"-O{k}={v}" for k, v in {**TINY, "eval_every": 3}.items()]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["log"][-1]["kind"] == "val"
    assert proc.stderr.count("M params") == 1  # only rank 0 reports
    assert proc.stdout.strip().endswith("best.pt")


@pytest.mark.slow
def test_cli_errors(tiny_checkpoint, tmp_path, monkeypatch):
    result = run_maestro("generate", "--composer", "Zappa", "--checkpoint", str(tiny_checkpoint),
                         "--out-dir", str(tmp_path))
    assert result.code == 2 and "unknown composer 'Zappa'" in result.stderr and "Frédéric Chopin" in result.stderr
    result = run_maestro("train", "transformer", "--data", str(tmp_path), "-O", "bogus=1")
    assert result.code == 2 and "unknown option 'bogus'" in result.stderr and "batch_size" in result.stderr
    result = run_maestro("generate", "--checkpoint", str(tmp_path / "nothing"), "--out-dir", str(tmp_path))
    assert result.code == 1 and "no checkpoint" in result.stderr

    import maestro_models

    from maestro_cli.backends import transformer as backend
    from maestro_cli.errors import MaestroError

    monkeypatch.setattr(maestro_models, "MODELS_DIR", tmp_path)
    with pytest.raises(MaestroError, match="no default generator model installed; pass --checkpoint"):
        backend.default_checkpoint()


@pytest.mark.slow
def test_cli_generate_writes_midi_paths(tiny_checkpoint, tmp_path):
    result = run_maestro("generate", "-c", "chopin", "-n", "2", "--seconds", "1", "--seed", "3",
                         "--checkpoint", str(tiny_checkpoint), "--out-dir", str(tmp_path), "-O", "threads=1")
    assert result.code == 0, result.stderr
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert [p.name for p in paths] == ["chopin_seed3_00.mid", "chopin_seed3_01.mid"]
    assert all(len(read_midi(p.read_bytes()).sounding()) > 0 for p in paths)


def test_nll_of_a_piece_scores_every_event_once():
    torch.manual_seed(0)
    model = Transformer(preset_config("tiny", events.VOCAB_SIZE, max_seq_len=16)).eval()
    piece = np.concatenate([scale_piece(50, 20)]).astype(np.int64)
    total, count = tn.piece_nll(model, piece, events.composer_token("Chopin"), torch.device("cpu"))
    assert count == len(piece) - 1  # every token after START, END included
    # the first window's share equals a direct computation
    x = torch.tensor([[events.composer_token("Chopin"), *piece[:15]]])
    direct = torch.nn.functional.cross_entropy(model(x)[0, 1:], torch.tensor(piece[1:16]), reduction="sum")
    short_total, short_count = tn.piece_nll(model, piece[:16], events.composer_token("Chopin"), torch.device("cpu"))
    assert short_count == 15 and abs(short_total - direct.item()) < 1e-3
    shuffled = tn.split_nll(model, TWO, shuffle_composer=True)
    assert shuffled["events"] == int(TWO.lengths.sum()) - 2 and shuffled["perplexity"] > 1


def test_a_run_from_init_weights_counts_on_their_history(tmp_path):
    """`-O init` starts a new run (own counters from 0) that keeps the init weights' history in the lineage."""
    tt.train(TWO, TWO, tmp_path / "a", tt.TrainConfig(**TINY, steps=4, eval_every=2), device="cpu")
    first, second = tmp_path / "a" / "last.pt", tmp_path / "b" / "last.pt"
    shipped = tc.export_model(first, tmp_path / "model")
    tt.train(TWO, TWO, tmp_path / "b", tt.TrainConfig(**TINY, steps=3, eval_every=3, init=str(shipped)), device="cpu")
    a = torch.load(first, weights_only=True)
    b = torch.load(second, weights_only=True)
    assert b["step"] == 3 and b["tokens_seen"] < a["tokens_seen"]  # this run's own counters
    history = tc.lineage(torch.load(tc.export_model(second, tmp_path / "model2") / "model.pt", weights_only=True))
    assert history["step"] == 7 and history["tokens_seen"] == a["tokens_seen"] + b["tokens_seen"]
    assert [e["step"] for e in history["log"] if e["kind"] == "val"] == [2, 4, 7]
    assert history["wall_s"] == pytest.approx(a["wall_s"] + b["wall_s"])
    assert tc.lineage(a)["log"] == a["log"]  # a run without init is its own history


def test_deepened_model_computes_the_same_function_and_then_learns(tmp_path):
    """Depth growth keeps the logits; a run `-O init` with more layers starts from them and trains every block."""
    torch.manual_seed(0)
    small = Transformer(preset_config("tiny", events.VOCAB_SIZE, max_seq_len=64)).eval()
    for p in small.parameters():  # non-trivial weights everywhere, biases included
        p.data.add_(0.05 * torch.randn_like(p))
    x = torch.randint(0, events.VOCAB_SIZE, (2, 64))
    deep = deepen(small, 5).eval()
    assert deep.config.n_layer == 5
    assert torch.allclose(deep(x), small(x), atol=1e-5)
    assert torch.equal(deepen(small, 2)(x), small(x))  # the same depth: a copy
    with pytest.raises(ValueError, match="cannot deepen a 2-layer model to 1 layers"):
        deepen(small, 1)

    tt.train(TWO, TWO, tmp_path / "a", tt.TrainConfig(**TINY, steps=4, eval_every=4), device="cpu")
    shipped = tc.export_model(tmp_path / "a" / "last.pt", tmp_path / "model")
    tt.train(TWO, TWO, tmp_path / "b", tt.TrainConfig(**TINY, steps=2, eval_every=2, n_layer=4, init=str(shipped)),
             device="cpu")
    a, b = (torch.load(tmp_path / r / "last.pt", weights_only=True) for r in ("a", "b"))
    assert b["config"]["n_layer"] == 4 and tc.lineage(b)["step"] == 6
    assert b["model"]["blocks.1.mlp.2.weight"].abs().sum() > 0  # a new block's zeroed output has learned
    with pytest.raises(ValueError, match=r"do not fit this run \(d_model 64 vs 32\); only n_layer may grow"):
        tt.train(TWO, TWO, tmp_path / "c", tt.TrainConfig(**TINY, steps=2, d_model=32, init=str(shipped)),
                 device="cpu")


def test_resume_with_other_steps_restarts_or_refits_the_cycle(tmp_path):
    cfg = {**TINY, "eval_every": 2}
    for new_cycle, expected in ((True, {"cycle_start": 2, "total": 6}), (False, {"cycle_start": 0, "total": 6})):
        out = tmp_path / str(new_cycle)
        tt.train(TWO, TWO, out, tt.TrainConfig(**cfg, steps=10), device="cpu", stop_after=2)
        tt.train(TWO, TWO, out, tt.TrainConfig(**cfg, steps=6, new_cycle=new_cycle), device="cpu", resume=True,
                 stop_after=3)
        state = torch.load(out / "last.pt", weights_only=True)
        assert state["scheduler"] == expected
        resumed = tt.TrainConfig(**cfg, steps=6)
        lr_at_resume = tt.lr_at(2, resumed, **expected)
        assert (lr_at_resume == resumed.lr / TINY["warmup"]) == new_cycle  # a new cycle starts a new warm-up
    assert tt.lr_at(6, resumed, **expected) == resumed.lr * resumed.min_lr_ratio  # the re-fitted cycle ends at 6


def test_warmup_stable_decay_holds_the_peak_until_the_last_steps():
    cfg = tt.TrainConfig(lr=1e-3, warmup=10, min_lr_ratio=0.1, decay_steps=100)
    assert tt.lr_at(5, cfg, 0, 1000) == pytest.approx(6e-4)  # warm-up as before
    assert tt.lr_at(10, cfg, 0, 1000) == tt.lr_at(900, cfg, 0, 1000) == 1e-3  # stable
    assert tt.lr_at(950, cfg, 0, 1000) == pytest.approx(5.5e-4)  # half-way down the cosine
    assert tt.lr_at(1000, cfg, 0, 1000) == pytest.approx(1e-4)
    assert tt.lr_at(700, cfg, 0, 750) < tt.lr_at(700, cfg, 0, 1000)  # an earlier end starts the decay from here
    cosine = tt.TrainConfig(lr=1e-3, warmup=10, min_lr_ratio=0.1)
    assert tt.lr_at(505, cosine, 0, 1000) == pytest.approx(5.5e-4)  # decay_steps 0: cosine over the cycle


@pytest.mark.slow
def test_cli_train_and_resume_keep_the_run_options(tmp_path):
    cache = write_cache(tmp_path / "cache", TWO)
    options = [f"-O{k}={v}" for k, v in {**TINY, "batch_size": 3, "eval_every": 2}.items()]
    first = run_maestro("train", "transformer", "--data", str(cache), "--out", str(tmp_path / "run"), "--steps", "2",
                        "--device", "cpu", *options)
    assert first.code == 0, first.stderr
    assert first.stdout.strip() == str(tmp_path / "run" / "best.pt")
    again = run_maestro("train", "transformer", "--data", str(cache), "--out", str(tmp_path / "run"), "--steps", "3",
                        "--resume", "-O", "log_every=1")
    assert again.code == 0, again.stderr
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["train_config"]["batch_size"] == 3 and ckpt["train_config"]["log_every"] == 1
    assert ckpt["config"]["max_seq_len"] == 64 and ckpt["scheduler"] == {"cycle_start": 2, "total": 3}
    missing = run_maestro("train", "transformer", "--data", str(cache), "--out", str(tmp_path / "none"), "--resume")
    assert missing.code == 1 and "nothing to resume" in missing.stderr
