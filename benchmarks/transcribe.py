"""Transcription benchmark: note F1 (onset, +offset, +velocity), frame F1, pedal F1, speed and memory of every
installed backend.

Sets (ground truth in brackets):
- ``maps``: the 4 real MAPS ENSTDk Disklavier recordings (16 kHz FLAC; the first ``--maps-seconds`` of each if
  given) [MAPS TSV: key presses, no pedal];
- ``maps-pedal``: the same transcriptions against the A-MAPS MIDI with the sustain pedal applied; sustain-pedal
  F1 (Kong et al.'s convention) for backends that write CC64;
- ``maestro-excerpt``: the 2 s real MAESTRO recording [its MIDI, pedal applied, cut at 2 s];
- ``maestro-fluidr3``: the first ``--seconds`` (default 120) of 10 MAESTRO v3 test-split MIDIs, picked evenly
  from the split sorted by file name and rendered at 44.1 kHz with the built-in ``soundfont`` renderer and
  FluidR3_GM (the soundfont the onsets-frames model never trains on) [the MIDI, pedal applied, cut].

Scores are means over the files of a set (as in the Onsets & Frames papers); speed is seconds of audio per
second of wall time for ``transcribe()`` (audio loading included, after one warm-up call on the shortest file that
loads the model); each backend runs in its own process, whose peak resident memory is reported.
By default every installed backend runs, and transkun twice: its fast path (the default) and
``transkun:path=reference`` (transkun's own inference code), side by side. Renders and excerpts are cached in
``--cache``. Run:
``.venv/bin/python benchmarks/transcribe.py [--backends transkun,transkun:path=reference,onsets-frames,basic-pitch]
[--pieces 10] [--seconds 120] [--maps-seconds 30]``.
Prints a rich table (stderr) and one JSON line (stdout).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from common import (
    MAESTRO_EXCERPT,
    MAESTRO_MIDI,
    MAPS,
    amaps_midi,
    argument_parser,
    emit,
    isolated,
    maestro_test_rows,
    peak_rss_mb,
)
from common import console as make_console
from rich.table import Table

from maestro_cli.audio.io import probe_audio
from maestro_cli.metrics.transcription import evaluate_notes, evaluate_pedal, mean_scores, read_sustain
from maestro_cli.registry import get_backend, get_registry
from maestro_cli.symbolic.midi import read_notes

FLUIDR3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE = 44100
console = make_console(width=180)


@dataclass
class Item:
    """One recording and its reference notes (one set per scored set)."""

    name: str
    audio: Path
    refs: dict[str, np.ndarray]
    duration: float
    pedals: dict[str, np.ndarray] | None = None


def cut(notes: np.ndarray, seconds: float) -> np.ndarray:
    """Notes starting before ``seconds``, with offsets clipped there."""
    notes = notes[notes["start_s"] < seconds]
    notes["end_s"] = np.minimum(notes["end_s"], seconds)
    return notes[notes["end_s"] > notes["start_s"]]


def cut_spans(spans: np.ndarray, seconds: float) -> np.ndarray:
    """Spans starting before ``seconds``, clipped there."""
    spans = spans[spans[:, 0] < seconds].copy()
    spans[:, 1] = np.minimum(spans[:, 1], seconds)
    return spans


def maps_items(shared: Path, seconds: float, cache: Path) -> list[Item]:
    folder = shared / MAPS
    items = []
    for flac in sorted((folder / "flac").glob("*.flac")):
        piece = flac.stem.removeprefix("MAPS_MUS-")
        midi = amaps_midi(folder, piece)
        refs = {"maps": read_notes(folder / "tsv" / f"{flac.stem}.tsv"), "maps-pedal": read_notes(midi)}
        pedals = {"maps-pedal": read_sustain(midi)}
        if seconds and probe_audio(flac).duration > seconds:
            clip = cache / f"{flac.stem}.{seconds:g}s.flac"
            if not clip.exists():
                cache.mkdir(parents=True, exist_ok=True)
                audio, rate = soundfile.read(flac, frames=int(seconds * probe_audio(flac).sample_rate))
                soundfile.write(clip, audio, rate)
            refs = {name: cut(ref, seconds) for name, ref in refs.items()}
            pedals = {name: cut_spans(spans, seconds) for name, spans in pedals.items() if spans is not None}
            flac = clip
        items.append(Item(flac.stem, flac, refs, probe_audio(flac).duration, pedals))
    return items


def excerpt_items(shared: Path) -> list[Item]:
    items = []
    for wav in sorted((shared / MAESTRO_EXCERPT).rglob("*.wav")):
        duration = probe_audio(wav).duration
        items.append(Item(wav.stem, wav, {"maestro-excerpt": cut(read_notes(wav.with_suffix(".midi")), duration)},
                          duration))
    return items


def test_midis(shared: Path, count: int) -> list[Path]:
    """``count`` test-split MIDIs spread evenly over the split sorted by file name."""
    root = shared / MAESTRO_MIDI
    names = sorted(row["midi_filename"] for row in maestro_test_rows(shared, "v3"))
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
    """Per set: mean scores, seconds of audio, wall seconds, peak memory (MB) of the process.
    ``name:key=value:...`` passes backend options."""
    backend, *options = name.split(":")
    transcriber = get_backend("transcriber", backend).create(options)
    rows: dict[str, list[dict]] = {}
    audio_seconds: dict[str, float] = {}
    wall: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        shortest = min(items, key=lambda item: item.duration)
        transcriber.transcribe(shortest.audio, Path(tmp) / "warmup.mid")  # load the model once
        for item in items:
            out = Path(tmp) / f"{item.name}.mid"
            start = time.perf_counter()
            transcriber.transcribe(item.audio, out)
            elapsed = time.perf_counter() - start
            est, est_pedal = read_notes(out), read_sustain(out)
            for set_name, ref in item.refs.items():
                scores = evaluate_notes(ref, est)
                ref_pedal = (item.pedals or {}).get(set_name)
                if ref_pedal is not None and len(ref_pedal) and est_pedal is not None:
                    scores.update(evaluate_pedal(ref_pedal, est_pedal))
                rows.setdefault(set_name, []).append(scores)
                audio_seconds[set_name] = audio_seconds.get(set_name, 0.0) + item.duration
                wall[set_name] = wall.get(set_name, 0.0) + elapsed
            console.print(f"{name}: {item.name} {item.duration:.0f} s in {elapsed:.1f} s, "
                          f"note F1 {rows[next(iter(item.refs))][-1]['note_f1']:.3f}")
    peak_mb = peak_rss_mb()
    return {set_name: {**mean_scores(set_rows), "files": len(set_rows), "audio_s": audio_seconds[set_name],
                       "wall_s": wall[set_name], "x_realtime": audio_seconds[set_name] / wall[set_name],
                       "peak_mb": peak_mb}
            for set_name, set_rows in rows.items()}


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--backends", help="comma-separated transcriber names (default: every installed one); "
                        "options after colons, e.g. onsets-frames:onset_threshold=0.4")
    parser.add_argument("--pieces", type=int, default=10, help="MAESTRO test MIDIs to render")
    parser.add_argument("--seconds", type=float, default=120.0, help="seconds of each rendered piece")
    parser.add_argument("--maps-seconds", type=float, default=0.0,
                        help="transcribe only the first seconds of each MAPS recording (0: whole files)")
    parser.add_argument("--soundfont", type=Path, default=FLUIDR3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "maestro-bench-transcribe")
    args = parser.parse_args()
    backends = args.backends.split(",") if args.backends else get_registry("transcriber").names()
    if not args.backends and "transkun" in backends:  # the fast path against the shipped reference path
        backends.insert(backends.index("transkun") + 1, "transkun:path=reference")
    items = maps_items(args.shared, args.maps_seconds, args.cache) + excerpt_items(args.shared)
    if args.pieces:
        items += rendered_items(args.shared, args.pieces, args.seconds, args.cache, args.soundfont)
    results = {}
    for name in backends:
        try:
            results[name] = isolated(run_backend, name, items)  # its own process: its own peak memory
        except Exception as exc:  # e.g. a model without a trained checkpoint: report it, bench the others
            console.print(f"skipping {name}: {type(exc).__name__}: {exc}")

    table = Table(title="maestro transcribe: mean over files (mir_eval; onset 50 ms, offset 20 %/50 ms)")
    for label in ("backend", "set", "files", "note P", "note R", "note F1", "+offset F1", "+off+vel F1",
                  "frame F1", "pedal F1", "pedal on F1", "x real time", "peak MB"):
        table.add_column(label, justify="left" if label in ("backend", "set") else "right")
    for name, sets in results.items():
        for set_name, r in sets.items():
            table.add_row(name, set_name, str(r["files"]), *(f"{r[key]:.3f}" for key in (
                "note_precision", "note_recall", "note_f1", "note_offset_f1", "note_offset_velocity_f1",
                "frame_f1")), *(f"{r[key]:.3f}" if key in r else "-" for key in ("pedal_f1", "pedal_onset_f1")),
                f"{r['x_realtime']:.2f}", f"{r['peak_mb']:.0f}")
    console.print(table)
    summary = {name: {set_name: {key: round(value, 4) for key, value in r.items()} for set_name, r in sets.items()}
               for name, sets in results.items()}
    emit("transcribe", {"soundfont": args.soundfont.name, "seconds": args.seconds, "maps_seconds": args.maps_seconds,
                        "pieces": args.pieces, "results": summary})


if __name__ == "__main__":
    main()
