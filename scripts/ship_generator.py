"""Ship a generator run as the default model: weights + config + vocabulary + MODEL_CARD.md under models/<name>/.

Exports ``<run>/best.pt`` without optimizer or RNG state, measures the test NLL per event on whole pieces of the
whole test split (and on the seeded subset of ``--test-pieces`` pieces earlier cards reported) with the true composer
token and on the whole split with a shuffled one (each piece gets another composer of the split), and writes the
model card from the run's validation curve (plus stuck notes and composer classification with ``--quality``).
A run started with ``-O init`` is reported with the history of its init weights
(steps, tokens, wall time and curve counted on, ``transformer_train.lineage``). The card also compares with
the model it replaces (same test pieces; weights that do not improve the whole-split NLL are not shipped
unless ``--force``), times ``maestro generate --composer Chopin -n 4`` in a fresh process
(wall time and peak memory; the machine's load average is reported with it), and extrapolates the validation
curve to the 2.2 and 2.0 targets. Run from the repository root:

    .venv/bin/python scripts/ship_generator.py --run /work/runs/generator --data ../shared/data/maestro-v2.0.0-midi \
        --command "$(cat /work/runs/generator.cmd)" --hardware "2 shared CPU cores"
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from maestro_cli.models import transformer_checkpoint as tc
from maestro_cli.models import transformer_data as td
from maestro_cli.models import transformer_nll as tn
from maestro_cli.tokens import performance as events

REPO = Path(__file__).resolve().parents[1]


def curve_rows(log: list[dict], every: int) -> list[dict]:
    """Every ``every``-th validation entry of a training log, and the last."""
    rows = [entry for entry in log if entry["kind"] == "val"]
    return [row for i, row in enumerate(rows) if i % every == 0 or i == len(rows) - 1]


def previous_metrics(folder: Path) -> dict | None:
    """The metrics of the model about to be replaced, if one is shipped."""
    path = folder / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def time_generation(folder: Path) -> dict:
    """Wall time and peak resident memory of ``maestro generate --composer Chopin -n 4`` in a fresh process."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "maestro_cli", "generate", "--composer", "Chopin", "-n", "4",
                        "--seconds", "30", "--seed", "1", "--checkpoint", str(folder), "--out-dir", out],
                       check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
    return {"wall_s": round(wall, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
            "load_average": round(load, 2)}


def training_rate(log: list[dict], last: int = 50) -> float:
    """Median tokens per second over the last ``last`` logged training intervals."""
    rates = [entry["tok_s"] for entry in log if entry["kind"] == "train"]
    return float(statistics.median(rates[-last:]))


def extrapolate(log: list[dict], targets: dict[str, float], doublings: float = 1.0) -> dict:
    """Fit val NLL = a + b * log2(tokens) to the running best over the last ``doublings`` of tokens; tokens per target.

    ``targets`` maps a label to a validation NLL. The running best skips the bumps of warm restarts; the fit covers
    only the recent curve (a fit from the start is steepened by the early fall), and a straight line in log-tokens
    keeps falling forever, so for a model of fixed size the token counts are a lower bound.
    """
    curve = [(entry["tokens_seen"], entry["val_nll"]) for entry in log if entry["kind"] == "val"]
    from_tokens = curve[-1][0] / 2 ** doublings
    best, points = math.inf, []
    for tokens, nll in curve:
        best = min(best, nll)
        if tokens >= from_tokens:
            points.append((math.log2(tokens), best))
    x, y = np.array(points).T
    slope, intercept = np.polyfit(x, y, 1)
    return {"per_doubling": float(slope), "from_tokens": from_tokens, "val_targets": targets,
            "tokens": {label: float(2 ** ((v - intercept) / slope)) if slope < -1e-6 else None
                       for label, v in targets.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--name", default="maestro-transformer")
    parser.add_argument("--test-pieces", type=int, default=36, help="the seeded subset reported for continuity")
    parser.add_argument("--quality", type=Path, default=None,
                        help="JSON line of benchmarks/generate_quality.py for these weights (stuck notes, composers)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--command", required=True, help="the exact training command(s)")
    parser.add_argument("--hardware", default=f"{platform.machine()} CPU")
    parser.add_argument("--curve-every", type=int, default=1, help="keep every Nth validation row in the card")
    parser.add_argument("--force", action="store_true", help="ship even if the whole test NLL is not better")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    previous = previous_metrics(REPO / "models" / args.name)
    model, ckpt = tc.load_model(args.run / "best.pt")
    history = tc.lineage(ckpt)
    test = td.load_split(args.data, "test")
    started = time.time()
    true, subset = whole_and_subset_nll(model, test, args.test_pieces)
    if previous and previous.get("test_pieces") == 0 and not args.force \
            and true["nll_per_event"] >= previous["test_nll"]["nll_per_event"]:
        sys.exit(f"not shipped: whole test NLL {true['nll_per_event']:.4f} is not below the shipped "
                 f"{previous['test_nll']['nll_per_event']:.4f} (--force ships anyway)")
    folder = tc.export_model(args.run / "best.pt", REPO / "models" / args.name)
    speed = time_generation(folder)
    shuffled = tn.split_nll(model, test, shuffle_composer=True)
    print(f"test NLL {true['nll_per_event']:.4f} (shuffled composer {shuffled['nll_per_event']:.4f}), "
          f"{true['pieces']} pieces, {true['events']:,} events; {subset['pieces']}-piece subset "
          f"{subset['nll_per_event']:.4f}; {time.time() - started:.0f} s", file=sys.stderr)
    train = td.load_split(args.data, "train")
    counts: dict[int, int] = {}
    for token in train.composers.tolist():
        counts[token] = counts.get(token, 0) + 1
    names = dict(zip(range(events.COMPOSER, events.VOCAB_SIZE), events.COMPOSER_NAMES))
    metrics = {"step": history["step"], "tokens_seen": history["tokens_seen"], "wall_s": history["wall_s"],
               "params": model.num_params(), "val_nll_windows": ckpt["best_val"],
               "test_nll": true, "test_nll_shuffled_composer": shuffled, "test_pieces": 0,
               "test_nll_subset": {**subset, "seed": 0},
               "generate_chopin_4x30s": speed, "training_tok_s": training_rate(history["log"])}
    if args.quality is not None:
        metrics["quality"] = json.loads(args.quality.read_text(encoding="utf-8").strip().splitlines()[-1])
    gap = ckpt["best_val"] - true["nll_per_event"]  # test NLL has run below validation: the targets are on test
    metrics["extrapolation"] = extrapolate(history["log"], {f"test {t}": t + gap for t in (2.2, 2.0)})
    metrics["extrapolation"]["run_from_tokens"] = (ckpt.get("prior") or {}).get("tokens_seen", 0)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    write_card(folder, args, ckpt, history, model, metrics, previous, counts, names, len(train.tokens))
    print(folder)


def whole_and_subset_nll(model, split, subset_pieces: int) -> tuple[dict, dict]:
    """NLL with the true composer on every piece of ``split``, and on the seeded subset of ``subset_pieces`` pieces
    that :func:`transformer_train.split_nll` draws (the figure earlier cards reported), from one pass."""
    per_piece = [tn.piece_nll(model, split.piece(i), int(split.composers[i]), torch.device("cpu"))
                 for i in range(len(split))]
    chosen = np.sort(np.random.default_rng(0).choice(len(split), size=subset_pieces, replace=False))

    def summary(indices) -> dict:
        total = sum(per_piece[i][0] for i in indices)
        count = sum(per_piece[i][1] for i in indices)
        return {"nll_per_event": total / count, "perplexity": math.exp(total / count), "events": count,
                "pieces": len(indices)}

    return summary(range(len(split))), summary(chosen)


def quality_lines(quality: dict) -> list[str]:
    """Stuck notes and composer classification of generated pieces (benchmarks/generate_quality.py)."""
    lines = ["", "## Generated music: stuck notes and composers",
             f"Measured with `benchmarks/generate_quality.py` ({quality['pieces_per_composer']} pieces x 30 s for "
             f"each of Bach, Chopin, Liszt, Mozart and Beethoven, seed {quality['seed']}).", "",
             f"| set | notes | > {quality['long_note_s']:g} s | share | longest |", "|---|---:|---:|---:|---:|"]
    for label, row in quality["stuck_notes"].items():
        lines.append(f"| {label} | {row['notes']:,} | {row['long']} | {row['share_pct']:.3f} % | "
                     f"{row['longest_s']:.1f} s |")
    real = quality["composer_accuracy"]["real test"]["accuracy"]
    lines += ["", "Composer classifier (features of 30 s excerpts, trained on real train excerpts; chance 20 %):", "",
              "| excerpts | n | accuracy | / real |", "|---|---:|---:|---:|"]
    for label, row in quality["composer_accuracy"].items():
        lines.append(f"| {label} | {row['n']} | {row['accuracy']:.1%} | {row['accuracy'] / real:.0%} |")
    return lines


def progress_lines(metrics: dict, previous: dict | None, cfg: dict, train_tokens: int) -> list[str]:
    """The card's comparison with the replaced model, generation speed and the extrapolated cost of the targets."""
    lines = ["", "## Progress, speed and what the targets would take"]
    if previous:
        new_subset = metrics["test_nll_subset"]["nll_per_event"]
        old_subset = (previous.get("test_nll_subset") or previous["test_nll"])["nll_per_event"]
        whole = f"whole test split {metrics['test_nll']['nll_per_event']:.3f}"
        if previous.get("test_pieces") == 0:
            old_whole = previous["test_nll"]["nll_per_event"]
            whole += f" (was {old_whole:.3f}, {metrics['test_nll']['nll_per_event'] - old_whole:+.3f})"
        lines.append(f"- Replaced weights: step {previous['step']:,} ({previous['tokens_seen'] / 1e6:.2f} M tokens), "
                     f"validation NLL {previous['val_nll_windows']:.3f}; these: step {metrics['step']:,} "
                     f"({metrics['tokens_seen'] / 1e6:.2f} M tokens), validation {metrics['val_nll_windows']:.3f}, "
                     f"{whole}; on the {metrics['test_nll_subset']['pieces']}-piece subset of earlier cards "
                     f"{old_subset:.3f} -> **{new_subset:.3f}** ({new_subset - old_subset:+.3f}).")
    speed = metrics["generate_chopin_4x30s"]
    lines.append(f"- `maestro generate --composer Chopin -n 4 --seconds 30 --seed 1` in a fresh process, start-up "
                 f"included: {speed['wall_s']:.1f} s wall, {speed['peak_rss_mb']} MB peak resident memory "
                 f"(1-minute load average {speed['load_average']:.2f} when it started; 2 cores).")
    fit, rate, seen = metrics["extrapolation"], metrics["training_tok_s"], metrics["tokens_seen"]
    spans = ""
    if fit.get("run_from_tokens", 0) > fit["from_tokens"]:
        spans = f" (the fit spans this run's start from init weights at {fit['run_from_tokens'] / 1e6:.0f} M tokens)"
    lines.append(f"- Training rate at the end of the run: {rate / 1000:.1f} k tokens/s. Over the last doubling of "
                 f"tokens (from {fit['from_tokens'] / 1e6:.0f} M), the running best validation NLL fell "
                 f"{-fit['per_doubling']:.3f} nats/event per doubling of tokens. Test NLL has run "
                 f"{metrics['val_nll_windows'] - metrics['test_nll']['nll_per_event']:.2f} below validation; a "
                 "straight line in log-tokens (a lower bound on the cost: a model of this size flattens out) "
                 f"puts the targets of {cfg['n_layer']} x {cfg['d_model']}{spans} at:")
    for label, tokens in fit["tokens"].items():
        val = fit["val_targets"][label]
        if tokens is None:
            lines.append(f"  - {label} (validation {val:.2f}): not reached on the current curve.")
            continue
        where = f"about {tokens / 1e6:,.0f} M tokens in all ({tokens / train_tokens:.1f} epochs)"
        more = ("reached" if tokens <= seen else f"{(tokens - seen) / rate / 3600:,.1f} more hours on this machine")
        lines.append(f"  - {label} (validation {val:.2f}): {where}; {more}.")
    return lines


def write_card(folder, args, ckpt, history, model, metrics, previous, counts, names, train_tokens) -> None:
    true, shuffled = metrics["test_nll"], metrics["test_nll_shuffled_composer"]
    cfg = ckpt["config"]
    opts = ckpt.get("train_config", {})
    rows = curve_rows(history["log"], args.curve_every)
    steps = f"{history['step']:,} (batch {opts.get('batch_size')} x {cfg['max_seq_len']} tokens)"
    if ckpt.get("prior"):
        steps += f": {ckpt['prior']['step']:,} of the init weights, then {ckpt['step']:,} in a new run from them"
    part = metrics["test_nll_subset"]
    subset = (f"all {true['pieces']} pieces, {true['events']:,} events; on the seeded subset of {part['pieces']} "
              f"pieces that earlier cards reported: {part['nll_per_event']:.3f}")
    lines = [
        f"# {args.name}: the default `maestro generate` model",
        "",
        "A decoder-only Transformer over Performance-RNN events (388 events + PAD/START/END + 22 composer",
        "tokens), composer-conditioned, trained with this repository's own `maestro train transformer`.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | {cfg['n_layer']} layers x {cfg['d_model']} (heads {cfg['n_head']}, FF {cfg['d_ff']}), "
        f"pre-norm, RoPE, tied embeddings, context {cfg['max_seq_len']}, dropout {cfg['dropout']} |",
        f"| parameters | {model.num_params():,} |",
        "| data | MAESTRO v2.0.0 MIDI files with the **v3 metadata split**: trained on `train` (962 pieces, "
        f"{train_tokens / 1e6:.1f} M tokens), selected on `validation`, reported on `test` |",
        f"| steps | {steps} |",
        f"| tokens seen | {history['tokens_seen']:,} ({history['tokens_seen'] / train_tokens:.2f} epochs) |",
        f"| wall time | {history['wall_s'] / 3600:.2f} h (validation included) |",
        f"| hardware | {args.hardware} |",
        f"| validation NLL | **{ckpt['best_val']:.3f}** nats/event ({opts.get('eval_windows')} fixed windows of "
        f"{cfg['max_seq_len']} events) |",
        f"| test NLL | **{true['nll_per_event']:.3f}** nats/event, perplexity {true['perplexity']:.1f} "
        f"(whole pieces, sliding windows of {cfg['max_seq_len']} with stride {cfg['max_seq_len'] // 2}; "
        f"{subset}) |",
        f"| composer conditioning | test NLL with the true composer token {true['nll_per_event']:.4f} vs. "
        f"a shuffled one {shuffled['nll_per_event']:.4f} (difference "
        f"{shuffled['nll_per_event'] - true['nll_per_event']:+.4f}; same pieces) |",
        "| license | weights derived from MAESTRO, which is CC BY-NC-SA 4.0: non-commercial use, share alike, "
        "attribution to Hawthorne et al. 2019 |",
        "",
        "Music Transformer reports about 1.8 nats/event on MAESTRO after long GPU training; this model is a",
        "small CPU-trained first step (see the curve and the limits below).",
        "",
        "## Training command",
        "```",
        args.command.strip(),
        "```",
        "Options as stored in the checkpoint: " + ", ".join(f"`{k}={v}`" for k, v in opts.items()) + ".",
        "",
        "## Validation NLL over time",
        "| step | tokens seen | wall time (min) | val NLL (nats/event) | train loss |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['step']:,} | {row['tokens_seen']:,} | {row['wall_s'] / 60:.1f} | "
                     f"{row['val_nll']:.3f} | {row['train_loss'] or '-'} |")
    lines += [
        "",
        "## Composers",
        "Use `maestro generate --composer NAME` (matched case- and accent-insensitively by substring). Pieces "
        "in the train split per composer token:",
        "",
        "| composer | train pieces |",
        "|---|---:|",
    ]
    for token, name in names.items():
        lines.append(f"| {name} | {counts.get(token, 0)} |")
    if "quality" in metrics:
        lines += quality_lines(metrics["quality"])
    lines += progress_lines(metrics, previous, cfg, train_tokens)
    lines += [
        "",
        "## Files",
        "`model.pt` (weights and metadata: config, tokenizer vocabulary, step, tokens seen, training log; no "
        "optimizer state; loads with `torch.load(..., weights_only=True)`), `config.json`, `vocab.json`, "
        "`metrics.json` (the numbers above).",
        "",
        "## Known limits",
        "- Trained for a short CPU budget: far from converged (the validation NLL was still falling); expect "
        "wrong notes, drifting tempo and little long-range structure.",
        f"- Context of {cfg['max_seq_len']} events (about {cfg['max_seq_len'] / 40:.0f} s of music); longer "
        "pieces are generated with a sliding window, so nothing beyond the window is remembered.",
        f"- Composer conditioning is weak so far: the true composer token lowers the test NLL by only "
        f"{shuffled['nll_per_event'] - true['nll_per_event']:.4f} nats/event against a shuffled one; "
        "`maestro generate --guidance W` (classifier-free guidance against the `unknown` composer) makes it "
        "audible. Composers with fewer than five pieces share the `unknown` token.",
        "- Solo piano only, Performance-RNN resolution (10 ms, 32 velocity bins); sustain pedal is folded into "
        "note durations, so outputs carry no pedal events.",
    ]
    (folder / "MODEL_CARD.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
