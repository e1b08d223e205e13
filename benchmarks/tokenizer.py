"""Tokenize benchmark: our ``performance`` tokenizer against MidiTok 3.1 MIDI-Like, same files, same run.

All MIDI files of the MAESTRO v3 metadata (1276 files in ``<shared>/maestro-v2.0.0-midi``) are tokenized:
ours parse with symusic, apply the sustain pedal and emit Performance-RNN events, once in one process and
once with a pool of ``--jobs`` workers (what ``maestro tokenize --dataset --jobs N`` does, without writing);
MidiTok 3.1 MIDI-Like (default config, 32 velocities; it parses with symusic too) encodes the same paths in
one process. Throughput in files/s and seconds of music per second; density in tokens per second of music;
the ratio is MidiTok's time over ours. The anchor measured here: MidiTok MIDI-Like 148 s, REMI 120 s.

Run: ``.venv/bin/python benchmarks/tokenizer.py [--limit N] [--jobs 2] [--shared ../shared/data]``.
Prints a rich table (stderr) and one JSON line (stdout).
"""

from __future__ import annotations

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from maestro_cli.data.maestro import open_dataset  # noqa: E402
from maestro_cli.tokens.performance import encode_midi  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def ours(path: Path) -> int:
    return len(encode_midi(path))


def run_ours(paths: list[Path], jobs: int) -> tuple[float, int]:
    """Wall seconds and total tokens, in ``jobs`` processes."""
    start = time.perf_counter()
    if jobs <= 1:
        tokens = sum(map(ours, paths))
    else:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            tokens = sum(pool.imap_unordered(ours, paths, chunksize=8))
    return time.perf_counter() - start, tokens


def run_miditok(paths: list[Path]) -> tuple[float, int]:
    """Wall seconds (tokenizer built inside the timing, imports outside) and total tokens of MIDI-Like."""
    import miditok

    start = time.perf_counter()
    tokenizer = miditok.MIDILike(miditok.TokenizerConfig(num_velocities=32))
    tokens = 0
    for path in paths:
        sequences = tokenizer.encode(path)
        tokens += sum(len(seq.ids) for seq in (sequences if isinstance(sequences, list) else [sequences]))
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=None, help="only the first N files (default: all)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    records = open_dataset(args.shared / "maestro-v2.0.0-midi", version="v3").records[: args.limit]
    paths = [record.midi_path for record in records]
    music = sum(record.duration for record in records)
    console = Console(stderr=True, width=130)
    console.print(f"{len(paths)} files, {music / 3600:.1f} h of music")

    import miditok  # noqa: F401 - import (torch) outside the timings

    runs = {"performance": run_ours(paths, 1),
            f"performance, {args.jobs} processes": run_ours(paths, args.jobs),
            "MidiTok 3.1 MIDI-Like": run_miditok(paths)}
    baseline = runs["MidiTok 3.1 MIDI-Like"][0]
    table = Table(title="tokenize: MAESTRO v3")
    for column in ("tokenizer", "seconds", "files/s", "music s/s", "tokens", "tokens per s of music", "MidiTok / ours"):
        table.add_column(column, justify="left" if column == "tokenizer" else "right")
    result = {"benchmark": "tokenize", "files": len(paths), "music_hours": round(music / 3600, 2), "runs": {}}
    for name, (seconds, tokens) in runs.items():
        table.add_row(name, f"{seconds:.1f}", f"{len(paths) / seconds:.1f}", f"{music / seconds:.0f}",
                      f"{tokens:,}", f"{tokens / music:.1f}", f"{baseline / seconds:.1f}x")
        result["runs"][name] = {"seconds": round(seconds, 2), "files_per_s": round(len(paths) / seconds, 2),
                                "tokens": tokens, "tokens_per_music_s": round(tokens / music, 2),
                                "speedup_vs_miditok": round(baseline / seconds, 2)}
    console.print(table)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
