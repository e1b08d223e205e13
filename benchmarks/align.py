"""Align benchmark: every installed aligner on ASAP score/performance pairs, audio and symbolic routes.

For each ASAP performance in ``<shared>/asap-sample`` (score MIDI, performance MIDI, beat annotations on both):
render the performance MIDI to a 22.05 kHz WAV with the built-in ``soundfont`` renderer, run
``maestro align <wav> --score midi_score.mid -b <backend>`` for every installed aligner, and compare the
mapped score beats with the annotated performance beats (``maestro_cli.metrics.alignment``). The symbolic
route aligns the performance MIDI itself. With ``--noisy-ends`` the audio also gets 3 s of noise before and
8 s of applause-like noise bursts after the music (the path must not be dragged by them).
Each alignment runs as its own ``maestro align`` process: CPU time (user + system) and peak memory (max RSS)
are of the whole command, imports included. Beats are pooled over all performances; "x RT (CPU)" = seconds of music
per CPU second.
Real audio with ground truth: the 4 MAPS Disklavier recordings (1) against their A-MAPS scores with the tempo
flattened (the MIDI's notes at their tick positions at one constant tempo), errors at the annotated A-MAPS beats,
and (2) against their own notes re-timed by a known smooth tempo curve (the "score"), errors at every onset.
Finally the two real Chopin Op. 10/3 recordings
(``synctoolbox-chopin``, no ground truth) are aligned to
their score with every backend: confidence, where the score's end lands, and how far the backends disagree;
plus the confidence of each recording against a wrong score.

The default backends are ``dtw:refine=false`` (the feature map, "chroma route"), ``dtw`` (refined by the note
onsets of the default transcriber, onsets-frames) and every other installed aligner.

Run: ``.venv/bin/python benchmarks/align.py [--per-piece N] [--limit N] [--noisy-ends] [--backends a,b]``.
Prints rich tables (stderr) and one JSON line (stdout).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from common import ASAP, CHOPIN, MAESTRO, MAPS, argument_parser, asap_performances, emit, run_process
from common import console as make_console
from rich.console import Console
from rich.table import Table

from maestro_cli.align.io import read_alignment
from maestro_cli.metrics import alignment as metrics
from maestro_cli.registry import get_backend, get_registry

SAMPLE_RATE = 22050
LEAD_IN = 3.0


def run_align(performance: Path, score: Path, backend: str, out: Path) -> tuple[float, float, bool]:
    """CPU seconds (user + system), peak RSS (MB) and success of one ``maestro align`` process.

    CPU time, not wall time: on a shared machine the wall time says more about the neighbours than the code.
    """
    name, *options = backend.split(":")  # "dtw:refine=false" passes -O refine=false
    run = run_process([*MAESTRO, "align", str(performance), "--score", str(score), "-b", name, "-o", str(out),
                       "--overwrite", *(arg for option in options for arg in ("-O", option))])
    if not run.ok:
        sys.stderr.write(run.stderr[-2000:])
    return run.cpu_s, run.peak_mb, run.ok


def noisy_ends(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """3 s of low noise before, 8 s of clapping-like noise bursts after the music."""
    lead = 0.01 * rng.standard_normal(int(LEAD_IN * SAMPLE_RATE)).astype(np.float32)
    tail = np.zeros(8 * SAMPLE_RATE, np.float32)
    for start in rng.integers(0, len(tail) - 2000, 400):
        tail[start:start + 2000] += 0.2 * rng.standard_normal(2000) * np.exp(-np.arange(2000) / 300)
    return np.concatenate([lead, audio, tail])


def evaluate(estimate: Path, record: dict, lead_in: float = 0.0) -> np.ndarray:
    """Errors at the annotated beats; ``lead_in`` seconds were added before the performance."""
    ref_score, ref_perf = metrics.load_reference([record["score_ann"], record["perf_ann"]])
    est_score, est_perf, _ = read_alignment(estimate)
    return metrics.alignment_errors(ref_score, ref_perf + lead_in, est_score, est_perf)


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--limit", type=int, default=0, help="only the first N performances (0: all)")
    parser.add_argument("--per-piece", type=int, default=0, help="at most N performances of each piece (0: all)")
    parser.add_argument("--only", default="", help="comma-separated substrings: only matching performances")
    parser.add_argument("--no-real", action="store_true", help="skip the real recordings (MAPS, Chopin)")
    parser.add_argument("--no-asap", action="store_true", help="skip the ASAP renders (only the real recordings)")
    parser.add_argument("--noisy-ends", action="store_true", help="also align renders with noise/applause ends")
    parser.add_argument("--backends", default="",
                        help="comma-separated aligners, each optionally name:key=value:... (default: all installed)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "maestro-bench-align")
    args = parser.parse_args()
    console = make_console(width=200)
    import soundfile

    backends = args.backends.split(",") if args.backends else ["dtw:refine=false", *get_registry("aligner").names()]
    everything = asap_performances(args.shared / ASAP)
    records = asap_performances(args.shared / ASAP, args.per_piece)
    if args.only:
        records = [r for r in records if any(part in r["name"] for part in args.only.split(","))]
    if args.limit:
        records = records[: args.limit]
    if args.no_asap:
        records = []
    args.work.mkdir(parents=True, exist_ok=True)
    renderer = get_backend("renderer", "soundfont").create(["channels=1"])
    routes = ["audio", "midi"] + (["audio, noisy ends"] if args.noisy_ends else [])
    results = {(b, r): {"errors": [], "seconds": 0.0, "music": 0.0, "peak_mb": 0.0, "failed": 0}
               for b in backends for r in routes}
    rng = np.random.default_rng(0)
    for number, record in enumerate(records, 1):
        wav = args.work / (record["name"].replace("/", "_") + ".wav")
        if not wav.exists():
            renderer.render(record["midi"], wav, sample_rate=SAMPLE_RATE, audio_format="wav", soundfont=None)
        duration = soundfile.info(str(wav)).duration
        inputs = {"audio": wav, "midi": record["midi"]}
        if args.noisy_ends:
            noisy = wav.with_name(wav.stem + ".noisy.wav")
            if not noisy.exists():
                audio, rate = soundfile.read(str(wav), dtype="float32")
                soundfile.write(str(noisy), noisy_ends(audio, rng), rate)
            inputs["audio, noisy ends"] = noisy
        for route in routes:
            for backend in backends:
                if route == "midi" and ":" in backend:  # the variants' options concern audio only
                    continue
                tag = backend.replace(":", "_")
                out = args.work / f"{wav.stem}.{route[:5].strip(',')}.{'noisy.' if 'noisy' in route else ''}{tag}.csv"
                seconds, peak, ok = run_align(inputs[route], record["score"], backend, out)
                slot = results[(backend, route)]
                slot["seconds"] += seconds
                slot["music"] += duration
                slot["peak_mb"] = max(slot["peak_mb"], peak)
                if ok:
                    slot["errors"].append(evaluate(out, record, LEAD_IN if "noisy" in route else 0.0))
                else:
                    slot["failed"] += 1
                console.print(f"[{number}/{len(records)}] {record['name']} {route} {backend}: "
                              f"{(100 * np.mean(slot['errors'][-1] <= 0.05)) if ok else float('nan'):.1f}% "
                              f"within 50 ms, {seconds:.1f} s, {peak:.0f} MB", highlight=False)
    table = Table(title=f"ASAP, {len(records)} performances (beats pooled)")
    for column in ("backend", "route", "beats", "mean ms", "median ms", "p90 ms", "≤25", "≤50", "≤100", "≤200",
                   "x RT (CPU)", "peak MB", "failed"):
        table.add_column(column, justify="right" if column not in ("backend", "route") else "left")
    summary = []
    for (backend, route), slot in results.items():
        if not slot["errors"]:
            continue
        stats = metrics.summarize(np.concatenate(slot["errors"]))
        row = {"backend": backend, "route": route, **stats, "x_realtime": slot["music"] / slot["seconds"],
               "peak_mb": slot["peak_mb"], "failed": slot["failed"]}
        summary.append(row)
        table.add_row(backend, route, str(stats["points"]), f"{stats['mean_ms']:.1f}", f"{stats['median_ms']:.1f}",
                      f"{stats['p90_ms']:.1f}", *(f"{stats[f'within_{t}ms']:.1f}" for t in (25, 50, 100, 200)),
                      f"{row['x_realtime']:.1f}", f"{slot['peak_mb']:.0f}", str(slot["failed"]))
    console.print(table)
    maps = chopin = beats = []
    if not args.no_real:
        beats = amaps_real(args.shared / MAPS, args.work, backends, console)
        maps = maps_real(args.shared / MAPS, args.work, backends, console)
        chopin = chopin_smoke(args.shared / CHOPIN, args.work, backends, everything, console)
    emit("align", {"performances": len(records), "results": summary, "maps_beats": beats, "maps": maps,
                   "chopin": chopin})


def amaps_real(folder: Path, work: Path, backends: list[str], console: Console) -> list[dict]:
    """Real recordings against tempo-flattened scores: errors at the A-MAPS beats, per backend; CPU time relative
    to the first backend (the whole ``maestro align`` process each time)."""
    import soundfile

    pairs = amaps_pairs(folder, work)
    table = Table(title=f"MAPS Disklavier, {len(pairs)} real recordings vs tempo-flattened A-MAPS scores "
                        "(A-MAPS beats pooled)")
    for column in ("backend", "beats", "mean ms", "median ms", "≤25", "≤50", "≤100", "≤50 per recording",
                   "CPU s", "CPU vs first", "peak MB"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    rows, first_cpu = [], None
    music = sum(soundfile.info(str(pair["audio"])).duration for pair in pairs)
    for backend in backends:
        errors, seconds, peak, info = [], 0.0, 0.0, {}
        for pair in pairs:
            out = work / f"amaps.{pair['name']}.{backend.replace(':', '_')}.csv"
            took, rss, ok = run_align(pair["audio"], pair["score"], backend, out)
            seconds, peak = seconds + took, max(peak, rss)
            if ok:
                s, p, info[pair["name"]] = read_alignment(out)
                errors.append(metrics.alignment_errors(pair["ref_score"], pair["ref_perf"], s, p))
        if not errors:
            continue
        first_cpu = first_cpu or seconds
        stats = metrics.summarize(np.concatenate(errors))
        per = [float(100 * np.mean(e <= 0.05 + 1e-9)) for e in errors]
        pinned = [meta.get("pinned_onsets", 0) / max(meta.get("score_onsets", 1), 1) for meta in info.values()]
        rows.append({"backend": backend, **stats, "within_50ms_per_recording": per, "cpu_s": seconds,
                     "cpu_vs_first": seconds / first_cpu, "x_realtime": music / seconds, "peak_mb": peak,
                     "pinned_onset_share": pinned if any(pinned) else None})
        table.add_row(backend, str(stats["points"]), f"{stats['mean_ms']:.1f}", f"{stats['median_ms']:.1f}",
                      *(f"{stats[f'within_{t}ms']:.1f}" for t in (25, 50, 100)), " ".join(f"{x:.0f}" for x in per),
                      f"{seconds:.0f}", f"{seconds / first_cpu:.2f}", f"{peak:.0f}")
    console.print(table)
    return rows


def maps_real(folder: Path, work: Path, backends: list[str], console: Console) -> list[dict]:
    """Real recordings with known note times: errors at every onset, per backend."""
    pairs = maps_pairs(folder, work)
    table = Table(title=f"MAPS Disklavier, {len(pairs)} real recordings vs their notes re-timed (onsets pooled)")
    for column in ("backend", "onsets", "mean ms", "median ms", "p90 ms", "≤25", "≤50", "≤100", "≤200", "x RT (CPU)",
                   "peak MB"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    rows = []
    import soundfile

    for backend in backends:
        errors, seconds, music, peak = [], 0.0, 0.0, 0.0
        for pair in pairs:
            out = work / f"maps.{pair['name']}.{backend.replace(':', '_')}.csv"
            took, rss, ok = run_align(pair["audio"], pair["score"], backend, out)
            seconds, peak = seconds + took, max(peak, rss)
            music += soundfile.info(str(pair["audio"])).duration
            if ok:
                s, p, _ = read_alignment(out)
                errors.append(metrics.alignment_errors(pair["ref_score"], pair["ref_perf"], s, p))
        if not errors:
            continue
        stats = metrics.summarize(np.concatenate(errors))
        rows.append({"backend": backend, **stats, "x_realtime": music / seconds, "peak_mb": peak})
        table.add_row(backend, str(stats["points"]), f"{stats['mean_ms']:.1f}", f"{stats['median_ms']:.1f}",
                      f"{stats['p90_ms']:.1f}", *(f"{stats[f'within_{t}ms']:.1f}" for t in (25, 50, 100, 200)),
                      f"{music / seconds:.1f}", f"{peak:.0f}")
    console.print(table)
    return rows


def maps_pairs(folder: Path, work: Path) -> list[dict]:
    """Real Disklavier recordings with a "score": their own notes re-timed by a known smooth tempo curve."""
    from maestro_cli.symbolic.notes import make_notes

    out = []
    for tsv in sorted((folder / "tsv").glob("*.tsv")):
        rows = np.loadtxt(tsv, skiprows=1, ndmin=2)
        total = rows[:, 1].max()
        warp = lambda t: t + 0.08 * total * np.sin(2 * np.pi * t / total)  # noqa: E731 - slope 0.5..1.5
        notes = make_notes(rows[:, 2].astype(int), warp(rows[:, 0]), warp(rows[:, 1]), rows[:, 3].astype(int))
        score = work / f"maps.{tsv.stem}.score.mid"
        if not score.exists():
            write_notes_midi(notes, score)
        onsets = np.unique(rows[:, 0])
        out.append({"name": tsv.stem, "audio": folder / "flac" / f"{tsv.stem}.flac", "score": score,
                    "ref_score": warp(onsets), "ref_perf": onsets})
    return out


def amaps_pairs(folder: Path, work: Path) -> list[dict]:
    """Real Disklavier recordings with A-MAPS beat annotations, against a tempo-flattened score: the A-MAPS MIDI's
    notes at their tick positions at one constant tempo (the performance's mean). A beat's score time is its tick
    (the annotated performance time through the MIDI's tempo map, which follows the performance) at that tempo."""
    import symusic

    from maestro_cli.symbolic.notes import make_notes

    out = []
    for midi in sorted((folder / "a-maps").glob("R_*_A_MAPS_*.mid")):
        stem = "MAPS_MUS-" + midi.stem.split("_A_MAPS_", 1)[1]
        annotation = midi.with_name(midi.stem.split("_A_MAPS_")[0] + "_A_MAPS_annotation.tsv")
        ticks, seconds = symusic.Score(str(midi)), symusic.Score(str(midi), ttype="second")
        tempo_ticks = np.array([tempo.time for tempo in ticks.tempos], float)
        tempo_seconds = np.zeros(len(ticks.tempos))
        for k in range(1, len(ticks.tempos)):  # seconds at each tempo change
            previous = ticks.tempos[k - 1]
            tempo_seconds[k] = tempo_seconds[k - 1] + (tempo_ticks[k] - tempo_ticks[k - 1]) / ticks.ticks_per_quarter \
                * previous.mspq / 1e6
        notes_t = [note for track in ticks.tracks for note in track.notes]
        notes_s = [note for track in seconds.tracks for note in track.notes]
        end_tick, end_s = max(n.end for n in notes_t), max(n.end for n in notes_s)
        qpm = (end_tick / ticks.ticks_per_quarter) / (end_s / 60.0)  # the mean tempo
        flat = lambda tick: np.asarray(tick, float) / ticks.ticks_per_quarter * 60.0 / qpm  # noqa: E731
        notes = make_notes(np.array([n.pitch for n in notes_t]), flat([n.time for n in notes_t]),
                           flat([n.end for n in notes_t]), np.array([n.velocity for n in notes_t]))
        score = work / f"amaps.{stem}.score.mid"
        if not score.exists():
            write_notes_midi(notes, score)
        beats = np.loadtxt(annotation, usecols=0, delimiter="\t", ndmin=1)
        beats = beats[beats >= min(n.time for n in notes_s) - 0.01]  # none before the music starts
        beat_ticks = np.interp(beats, tempo_seconds, tempo_ticks)
        last = beats > tempo_seconds[-1]  # the last tempo segment, extended
        beat_ticks[last] = tempo_ticks[-1] + (beats[last] - tempo_seconds[-1]) * 1e6 / ticks.tempos[-1].mspq \
            * ticks.ticks_per_quarter
        out.append({"name": stem, "audio": folder / "flac" / f"{stem}.flac", "score": score,
                    "ref_score": flat(beat_ticks), "ref_perf": beats})
    return out


def write_notes_midi(notes: np.ndarray, target: Path) -> None:
    import symusic

    score = symusic.Score(500)
    score.tempos.append(symusic.Tempo(0, 120.0))  # 1 tick = 1 ms
    track = symusic.Track("piano", program=0)
    for note in notes:
        start = int(round(note["start_s"] * 1000))
        track.notes.append(symusic.Note(start, max(1, int(round(note["end_s"] * 1000)) - start),
                                        int(note["pitch"]), int(note["velocity"])))
    score.tracks.append(track)
    score.dump_midi(str(target))


def chopin_smoke(folder: Path, work: Path, backends: list[str], records: list[dict], console: Console) -> list[dict]:
    """Real recordings vs their score: confidence, mapped end of the score, disagreement between backends."""
    score = folder / "Chopin_Op010-03-Measures1-8_MIDI.mid"
    wrong_score = records[0]["score"] if records else None
    table = Table(title="Chopin Op. 10/3 mm. 1-8, real recordings (no ground truth)")
    for column in ("recording", "backend", "confidence", "score end -> s", "audio s", "x RT (CPU)",
                   "wrong-score confidence"):
        table.add_column(column)
    rows, maps = [], {}
    import soundfile

    for wav in sorted(folder.glob("*.wav")):
        duration = soundfile.info(str(wav)).duration
        for backend in backends:
            out = work / f"chopin.{wav.stem}.{backend.replace(':', '_')}.csv"
            seconds, peak, ok = run_align(wav, score, backend, out)
            if not ok:
                continue
            s, p, info = read_alignment(out)
            maps[(wav.stem, backend)] = (s, p)
            wrong = None
            if wrong_score is not None:
                wrong_out = work / f"chopin.{wav.stem}.{backend.replace(':', '_')}.wrong.csv"
                if run_align(wav, wrong_score, backend, wrong_out)[2]:
                    wrong = read_alignment(wrong_out)[2].get("confidence")
            row = {"recording": wav.stem, "backend": backend, "confidence": info.get("confidence"),
                   "score_end_s": float(p[-1]), "audio_s": duration, "x_realtime": duration / seconds,
                   "wrong_score_confidence": wrong}
            rows.append(row)
            table.add_row(wav.stem.split("_")[-1], backend, f"{row['confidence']}", f"{row['score_end_s']:.2f}",
                          f"{duration:.2f}", f"{row['x_realtime']:.1f}", f"{wrong}")
    console.print(table)
    if len(backends) >= 2:
        for wav in sorted(folder.glob("*.wav")):
            a, b = maps.get((wav.stem, backends[0])), maps.get((wav.stem, backends[1]))
            if a and b:
                grid = np.linspace(max(a[0][0], b[0][0]), min(a[0][-1], b[0][-1]), 200)
                gap = np.abs(np.interp(grid, *a) - np.interp(grid, *b))
                console.print(f"{wav.stem}: {backends[0]} vs {backends[1]} disagree by median "
                              f"{1000 * np.median(gap):.0f} ms, p90 {1000 * np.percentile(gap, 90):.0f} ms",
                              highlight=False)
                rows.append({"recording": wav.stem, "disagreement_median_ms": float(1000 * np.median(gap)),
                             "disagreement_p90_ms": float(1000 * np.percentile(gap, 90))})
    return rows


if __name__ == "__main__":
    main()
