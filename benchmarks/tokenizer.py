"""Tokenize benchmark: our ``performance`` tokenizer against MidiTok 3.1 MIDI-Like, same files, same run.

All MIDI files of the MAESTRO v3 metadata (1276 files in ``<shared>/maestro-v2.0.0-midi``) are tokenized:
ours parse with symusic, apply the sustain pedal and emit Performance-RNN events, once in one process and
once with a pool of ``--jobs`` workers (what ``maestro tokenize --dataset --jobs N`` does, without writing);
MidiTok 3.1 MIDI-Like (default config, 32 velocities; it parses with symusic too) encodes the same paths in
one process. Throughput in files/s and seconds of music per second; density in tokens per second of music;
the ratio is MidiTok's time over ours. The anchor measured here: MidiTok MIDI-Like 148 s, REMI 120 s.

Run: ``.venv/bin/python benchmarks/tokenizer.py [--limit N] [--jobs 2] [--shared DIR]``.
Prints a rich table (stderr) and one JSON line (stdout).
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from common import MAESTRO_MIDI, argument_parser, console, emit, table, timed

from maestro_cli.data.maestro import open_dataset
from maestro_cli.tokens.performance import encode_midi


def ours(path: Path) -> int:
    return len(encode_midi(path))


def run_ours(paths: list[Path], jobs: int) -> tuple[float, int]:
    """Wall seconds and total tokens, in ``jobs`` processes."""
    if jobs <= 1:
        return timed(lambda: sum(map(ours, paths)))

    def pooled() -> int:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            return sum(pool.imap_unordered(ours, paths, chunksize=8))

    return timed(pooled)


def run_miditok(paths: list[Path]) -> tuple[float, int]:
    """Wall seconds (tokenizer built inside the timing, imports outside) and total tokens of MIDI-Like."""
    import miditok

    def encode_all() -> int:
        tokenizer = miditok.MIDILike(miditok.TokenizerConfig(num_velocities=32))
        tokens = 0
        for path in paths:
            sequences = tokenizer.encode(path)
            tokens += sum(len(seq.ids) for seq in (sequences if isinstance(sequences, list) else [sequences]))
        return tokens

    return timed(encode_all)


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--limit", type=int, default=None, help="only the first N files (default: all)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    records = open_dataset(args.shared / MAESTRO_MIDI, version="v3").records[: args.limit]
    paths = [record.midi_path for record in records]
    music = sum(record.duration for record in records)
    progress = console(width=130)
    progress.print(f"{len(paths)} files, {music / 3600:.1f} h of music")

    import miditok  # noqa: F401 - import (torch) outside the timings

    runs = {"performance": run_ours(paths, 1),
            f"performance, {args.jobs} processes": run_ours(paths, args.jobs),
            "MidiTok 3.1 MIDI-Like": run_miditok(paths)}
    baseline = runs["MidiTok 3.1 MIDI-Like"][0]
    results = table("tokenize: MAESTRO v3", ("tokenizer", "seconds", "files/s", "music s/s", "tokens",
                                             "tokens per s of music", "MidiTok / ours"))
    result = {"files": len(paths), "music_hours": round(music / 3600, 2), "runs": {}}
    for name, (seconds, tokens) in runs.items():
        results.add_row(name, f"{seconds:.1f}", f"{len(paths) / seconds:.1f}", f"{music / seconds:.0f}",
                        f"{tokens:,}", f"{tokens / music:.1f}", f"{baseline / seconds:.1f}x")
        result["runs"][name] = {"seconds": round(seconds, 2), "files_per_s": round(len(paths) / seconds, 2),
                                "tokens": tokens, "tokens_per_music_s": round(tokens / music, 2),
                                "speedup_vs_miditok": round(baseline / seconds, 2)}
    progress.print(results)
    emit("tokenize", result)


if __name__ == "__main__":
    main()
