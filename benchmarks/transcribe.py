"""Transcription benchmark: note F1 (onset, +offset, +velocity), frame F1 and speed of every installed backend.

Sets (ground truth in brackets):
- ``maps``: the 4 real MAPS ENSTDk Disklavier recordings (16 kHz FLAC) [MAPS TSV: key presses, no pedal];
- ``maps-pedal``: the same transcriptions against the A-MAPS MIDI with the sustain pedal applied;
- ``maestro-excerpt``: the 2 s real MAESTRO recording [its MIDI, pedal applied, cut at 2 s];
- ``maestro-fluidr3``: the first ``--seconds`` (default 120) of 10 MAESTRO v3 test-split MIDIs, picked evenly
  from the split sorted by file name and rendered at 44.1 kHz with the built-in ``soundfont`` renderer and
  FluidR3_GM (the soundfont the onsets-frames model never trains on) [the MIDI, pedal applied, cut].

Scores are means over the files of a set (as in the Onsets & Frames papers); speed is seconds of audio per
second of wall time for ``transcribe()`` (audio loading included, after one warm-up call that loads the model).
Renders are cached in ``--cache``. Run:
``.venv/bin/python benchmarks/transcribe.py [--backends basic-pitch,onsets-frames] [--pieces 10] [--seconds 120]``.
Prints a rich table (stderr) and one JSON line (stdout).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from rich.console import Console
from rich.table import Table

from maestro_cli.audio.io import probe_audio
from maestro_cli.metrics.transcription import evaluate_notes, mean_scores
from maestro_cli.registry import get_backend, get_registry
from maestro_cli.symbolic.notes import read_notes

REPO = Path(__file__).resolve().parents[1]
FLUIDR3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE = 44100
console = Console(stderr=True, width=150)


@dataclass
class Item:
    """One recording and its reference note lists (one per scored set)."""

    name: str
    audio: Path
    refs: dict[str, np.ndarray]
    duration: float


def cut(notes: np.ndarray, seconds: float) -> np.ndarray:
    """Notes starting before ``seconds``, with offsets clipped there."""
    notes = notes[notes[:, 0] < seconds].copy()
    notes[:, 1] = np.minimum(notes[:, 1], seconds)
    return notes[notes[:, 1] > notes[:, 0]]


def maps_items(shared: Path) -> list[Item]:
    folder = shared / "maps-disklavier"
    items = []
    for flac in sorted((folder / "flac").glob("*.flac")):
        piece = flac.stem.removeprefix("MAPS_MUS-")
        midi = next((folder / "a-maps").glob(f"R_*_A_MAPS_{piece}.mid"))
        refs = {"maps": read_notes(folder / "tsv" / f"{flac.stem}.tsv"), "maps-pedal": read_notes(midi)}
        items.append(Item(flac.stem, flac, refs, probe_audio(flac).duration))
    return items


def excerpt_items(shared: Path) -> list[Item]:
    items = []
    for wav in sorted((shared / "maestro-audio-excerpt").rglob("*.wav")):
        duration = probe_audio(wav).duration
        items.append(Item(wav.stem, wav, {"maestro-excerpt": cut(read_notes(wav.with_suffix(".midi")), duration)},
                          duration))
    return items


def test_midis(shared: Path, count: int) -> list[Path]:
    """``count`` test-split MIDIs spread evenly over the split sorted by file name."""
    root = shared / "maestro-v2.0.0-midi"
    with open(root / "maestro-v3.0.0.csv", newline="", encoding="utf-8") as handle:
        names = sorted(row["midi_filename"] for row in csv.DictReader(handle) if row["split"] == "test")
    picks = np.linspace(0, len(names) - 1, count).round().astype(int)
    return [root / names[i] for i in picks]


def rendered_items(shared: Path, count: int, seconds: float, cache: Path, soundfont: Path) -> list[Item]:
    renderer = get_backend("renderer", "soundfont").create([])
    cache.mkdir(parents=True, exist_ok=True)
    items = []
    for midi in test_midis(shared, count):
        full = cache / f"{midi.stem}.{soundfont.stem}.wav"
        clip = cache / f"{midi.stem}.{soundfont.stem}.{seconds:g}s.flac"
        if not clip.exists():
            if not full.exists():
                console.print(f"rendering {midi.name} with {soundfont.name}")
                renderer.render(midi, full, sample_rate=SAMPLE_RATE, audio_format="wav", soundfont=soundfont)
            audio, rate = soundfile.read(full, frames=int(seconds * SAMPLE_RATE), dtype="float32")
            soundfile.write(clip, audio, rate)
            full.unlink()
        duration = probe_audio(clip).duration
        items.append(Item(midi.stem, clip, {"maestro-fluidr3": cut(read_notes(midi), duration)}, duration))
    return items


def run_backend(name: str, items: list[Item]) -> dict[str, dict]:
    """Per set: mean scores, seconds of audio, wall seconds. ``name:key=value:...`` passes backend options."""
    backend, *options = name.split(":")
    transcriber = get_backend("transcriber", backend).create(options)
    rows: dict[str, list[dict]] = {}
    audio_seconds: dict[str, float] = {}
    wall: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        transcriber.transcribe(items[0].audio, Path(tmp) / "warmup.mid")  # load the model once
        for item in items:
            out = Path(tmp) / f"{item.name}.mid"
            start = time.perf_counter()
            transcriber.transcribe(item.audio, out)
            elapsed = time.perf_counter() - start
            est = read_notes(out)
            for set_name, ref in item.refs.items():
                rows.setdefault(set_name, []).append(evaluate_notes(ref, est))
                audio_seconds[set_name] = audio_seconds.get(set_name, 0.0) + item.duration
                wall[set_name] = wall.get(set_name, 0.0) + elapsed
            console.print(f"{name}: {item.name} {item.duration:.0f} s in {elapsed:.1f} s, "
                          f"note F1 {rows[next(iter(item.refs))][-1]['note_f1']:.3f}")
    return {set_name: {**mean_scores(set_rows), "files": len(set_rows), "audio_s": audio_seconds[set_name],
                       "wall_s": wall[set_name], "x_realtime": audio_seconds[set_name] / wall[set_name]}
            for set_name, set_rows in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", help="comma-separated transcriber names (default: every installed one); "
                        "options after colons, e.g. onsets-frames:onset_threshold=0.4")
    parser.add_argument("--pieces", type=int, default=10, help="MAESTRO test MIDIs to render")
    parser.add_argument("--seconds", type=float, default=120.0, help="seconds of each rendered piece")
    parser.add_argument("--soundfont", type=Path, default=FLUIDR3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "maestro-bench-transcribe")
    parser.add_argument("--shared", type=Path,
                        default=Path(os.environ.get("MAESTRO_SHARED_DATA", REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    backends = args.backends.split(",") if args.backends else get_registry("transcriber").names()
    items = maps_items(args.shared) + excerpt_items(args.shared)
    if args.pieces:
        items += rendered_items(args.shared, args.pieces, args.seconds, args.cache, args.soundfont)
    results = {}
    for name in backends:
        try:
            results[name] = run_backend(name, items)
        except Exception as exc:  # e.g. a model without a trained checkpoint: report it, bench the others
            console.print(f"skipping {name}: {type(exc).__name__}: {exc}")

    table = Table(title="maestro transcribe: mean over files (mir_eval; onset 50 ms, offset 20 %/50 ms)")
    for label in ("backend", "set", "files", "note P", "note R", "note F1", "+offset F1", "+off+vel F1",
                  "frame F1", "x real time"):
        table.add_column(label, justify="left" if label in ("backend", "set") else "right")
    for name, sets in results.items():
        for set_name, r in sets.items():
            table.add_row(name, set_name, str(r["files"]), *(f"{r[key]:.3f}" for key in (
                "note_precision", "note_recall", "note_f1", "note_offset_f1", "note_offset_velocity_f1",
                "frame_f1")), f"{r['x_realtime']:.1f}")
    console.print(table)
    summary = {name: {set_name: {key: round(value, 4) for key, value in r.items()} for set_name, r in sets.items()}
               for name, sets in results.items()}
    print(json.dumps({"benchmark": "transcribe", "soundfont": args.soundfont.name, "seconds": args.seconds,
                      "pieces": args.pieces, "results": summary}))


if __name__ == "__main__":
    main()
