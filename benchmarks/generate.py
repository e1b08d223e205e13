"""Generator benchmark: training tokens/s, sampling events/s with and without the KV cache, and the target
"4 pieces x 30 s with the ``small`` preset in under 30 s".

Training: forward + backward + AdamW step on random windows, per preset. Sampling: one batch of ``--batch``
rows, ``--events`` events each, from the same weights with the KV cache (one new token per step) and without it
(the whole context re-encoded every step, the naive peer). The end-to-end figure runs ``maestro generate``'s
backend on the shipped model (or ``--checkpoint``), 4 pieces x 30 s; without a trained model the small preset
with random weights samples 30 s x the training split's mean events per second (39.9) per piece.

``--profile-steps N`` profiles N sampling steps of ``maestro generate --composer Chopin -n 4`` (the shipped model,
default guidance: 8 rows) with torch.profiler instead: operator calls per step and the operators' shares of the
CPU time (the profile in docs/generate.md).

Run: ``.venv/bin/python benchmarks/generate.py [--threads 2] [--checkpoint DIR] [--profile-steps 100]``.
Prints rich tables (stderr) and one JSON line (stdout).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `maestro generate` does (see passive_openmp)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from common import argument_parser, emit, repeat  # noqa: E402
from common import console as make_console  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from maestro_cli.models.transformer import Transformer, preset_config  # noqa: E402
from maestro_cli.tokens import performance as events  # noqa: E402

EVENTS_PER_SECOND = 39.9  # MAESTRO v3 train split: 22.9 M tokens for 573,900 s of music (measured from the cache)


def train_speed(preset: str, batch: int, seq_len: int, steps: int) -> float:
    """Tokens per second of forward + backward + optimizer step (best of ``steps`` after one warm-up)."""
    torch.manual_seed(0)
    model = Transformer(preset_config(preset, events.VOCAB_SIZE, max_seq_len=seq_len))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(0, events.NUM_EVENTS, (batch, seq_len))

    def step() -> None:
        loss = F.cross_entropy(model(x).flatten(0, 1), x.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return batch * seq_len / repeat(step, runs=steps, warmup=1).best


def sample_speed(model: Transformer, batch: int, n_events: int, use_cache: bool) -> float:
    """Events per second (all rows) sampling ``n_events`` per row."""
    prompt = torch.full((batch, 2), events.START)
    prompt[:, 0] = events.composer_token("Chopin")
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    model.generate(prompt, n_events, generator=generator, use_cache=use_cache)
    return batch * n_events / (time.perf_counter() - start)


def end_to_end(checkpoint: Path | None) -> tuple[float, str]:
    """Seconds for 4 pieces x 30 s through the generate backend (shipped model) or the random small preset."""
    from maestro_cli.backends.transformer import TransformerGenerator, TransformerOptions, default_checkpoint
    from maestro_cli.errors import MaestroError
    from maestro_cli.protocols import GenerationRequest

    try:
        path = checkpoint or default_checkpoint()
    except MaestroError:
        path = None
    if path is not None:
        generator = TransformerGenerator(TransformerOptions(device="cpu", threads=torch.get_num_threads()))
        start = time.perf_counter()
        generator.generate(GenerationRequest(composer="Chopin", n=4, seconds=30.0, seed=0, checkpoint=path))
        return time.perf_counter() - start, str(path)
    torch.manual_seed(0)
    model = Transformer(preset_config("small", events.VOCAB_SIZE)).eval()
    prompt = torch.tensor([[events.composer_token("Chopin"), events.START]] * 4)
    start = time.perf_counter()
    model.generate(prompt, int(30 * EVENTS_PER_SECOND), generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - start, "small preset, random weights"


def step_profile(checkpoint: Path | None, steps: int, console: Console) -> dict:
    """Operator calls per sampling step and each top operator's share of the self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    from maestro_cli.backends.transformer import default_checkpoint
    from maestro_cli.models.sampling import NoteHold
    from maestro_cli.models.transformer_checkpoint import load_model
    from maestro_cli.protocols import DEFAULT_GUIDANCE

    model, _ = load_model(checkpoint or default_checkpoint(), "cpu")
    prompts = torch.tensor([[events.composer_token("Chopin"), events.START]] * 4)
    unconditional = prompts.clone()
    unconditional[:, 0] = events.composer_token(events.UNKNOWN)
    banned = [events.PAD, events.START, *range(events.COMPOSER, events.VOCAB_SIZE)]

    def run(n: int) -> None:
        model.generate(prompts, n, generator=torch.Generator().manual_seed(0), banned=banned,
                       unconditional=unconditional, guidance=DEFAULT_GUIDANCE, constraint=NoteHold(len(prompts)))

    run(20)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(steps)
    averages = [row for row in prof.key_averages() if row.key.startswith("aten::")]
    total = sum(row.self_cpu_time_total for row in averages)
    top = sorted(averages, key=lambda row: -row.self_cpu_time_total)[:8]
    table = Table(title=f"one sampling step, 8 rows ({steps} steps profiled)")
    for column in ("operator", "calls/step", "share of CPU"):
        table.add_column(column, justify="right" if column != "operator" else "left")
    for row in top:
        table.add_row(row.key, f"{row.count / steps:.0f}", f"{row.self_cpu_time_total / total:.1%}")
    console.print(table)
    return {"calls_per_step": round(sum(row.count for row in averages) / steps),
            "cpu_ms_per_step": round(total / 1000 / steps, 2),
            "shares": {row.key: round(row.self_cpu_time_total / total, 3) for row in top}}


def main() -> None:
    parser = argument_parser(__doc__, shared=False)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--events", type=int, default=600, help="events per row for the sampling comparison")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--profile-steps", type=int, default=0, help="profile this many sampling steps instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = make_console()
    if args.profile_steps:
        emit("generate-step-profile", {"threads": args.threads,
                                       **step_profile(args.checkpoint, args.profile_steps, console)})
        return

    training = {preset: train_speed(preset, batch, seq, 3)
                for preset, batch, seq in (("tiny", 16, 128), ("small", 16, 512))}
    table = Table(title=f"training throughput ({args.threads} threads)")
    table.add_column("preset")
    table.add_column("tokens/s", justify="right")
    for preset, speed in training.items():
        table.add_row(preset, f"{speed:,.0f}")
    console.print(table)

    torch.manual_seed(0)
    model = Transformer(preset_config("small", events.VOCAB_SIZE)).eval()
    cached = sample_speed(model, args.batch, args.events, use_cache=True)
    naive = sample_speed(model, args.batch, args.events, use_cache=False)
    table = Table(title=f"sampling, small preset, batch {args.batch} x {args.events} events")
    for column in ("path", "events/s", "speed-up"):
        table.add_column(column, justify="right" if column != "path" else "left")
    table.add_row("KV cache", f"{cached:,.0f}", f"{cached / naive:.1f}x")
    table.add_row("no cache (re-encode)", f"{naive:,.0f}", "1.0x")
    console.print(table)

    seconds, source = end_to_end(args.checkpoint)
    verdict = "meets" if seconds < 30 else "misses"
    console.print(f"4 pieces x 30 s ({source}): {seconds:.1f} s ({verdict} the 30 s target)")
    emit("generate", {"threads": args.threads, "train_tokens_per_s": {k: round(v) for k, v in training.items()},
                      "sample_events_per_s": {"kv_cache": round(cached), "no_cache": round(naive)},
                      "four_by_30s_seconds": round(seconds, 2), "four_by_30s_model": source})


if __name__ == "__main__":
    sys.exit(main())
