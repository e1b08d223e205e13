"""Batch benchmark: ``maestro render`` and ``maestro transcribe`` over MAESTRO test pieces (and, with ``--stages``
naming it, ``maestro align`` over ASAP performances), side by side in one run, with ``--jobs 1``, ``--jobs 2`` and
``--executor ray`` (a local Ray instance started by the command); then a batch killed half-way (SIGTERM) and resumed
with ``--skip-existing``.

Input: the first ``--seconds`` of the first ``--pieces`` MAESTRO v2 test-split MIDI files (metadata order); render
writes 16 kHz mono WAV (what the transcriber reads), transcribe reads those WAVs with ``--transcriber`` (default
onsets-frames, the built-in one; the default of ``maestro transcribe`` is transkun when its plugin is installed).
``--seconds 0`` takes whole pieces. Align reads one JSON-lines manifest of (performance, score) pairs: every
performance MIDI of ``asap-sample`` and its MIDI score, both cut at the first annotated score beat after
``--seconds`` (the same beat in both, by ASAP's annotations); ``--format notes``, backend ``dtw``. Each
configuration runs the whole command, start-up and model loading included, in a fresh output folder; the
configurations of a stage alternate round by round (``--rounds``) so a busy machine slows all alike. Files/s is
inputs / wall seconds; speed-up is against ``--jobs 1`` of the same stage. Outputs of every configuration are
compared byte for byte with ``--jobs 1``'s.

Run: ``.venv/bin/python benchmarks/batch.py [--pieces 40] [--seconds 15] [--rounds 1] [--no-ray]
[--stages render,transcribe,align]``.
Prints a rich table and one JSON line.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from common import ASAP, MAESTRO, argument_parser, console, emit, machine, maestro_excerpts, run_process, table

from maestro_cli.data.maestro import read_metadata


def asap_pairs(shared: Path, folder: Path, seconds: float) -> Path:
    """A JSON-lines manifest of every ASAP-sample performance MIDI with its MIDI score, both cut at the first
    annotated score beat after ``seconds``; each piece in its own subfolder."""
    import numpy as np
    import symusic

    def beats(path: Path) -> np.ndarray:
        return np.array([float(line.split("\t")[0]) for line in path.read_text().splitlines() if line.strip()])

    asap = shared / ASAP
    rows = [row for row in read_metadata(asap / "metadata.csv") if (asap / row["midi_performance"]).is_file()]
    lines = []
    for row in rows:
        source, piece = asap / row["folder"], folder / row["folder"].replace("/", "_")
        score_beats = beats(asap / row["midi_score_annotations"])
        cut = min(int(np.searchsorted(score_beats, seconds)), len(score_beats) - 1)
        piece.mkdir(parents=True, exist_ok=True)
        if not (piece / "score.mid").exists():
            symusic.Score(str(source / "midi_score.mid"), ttype="second").clip(0, score_beats[cut]).dump_midi(
                str(piece / "score.mid"))
        played = beats(asap / row["performance_annotations"])
        performance = piece / Path(row["midi_performance"]).name
        symusic.Score(str(asap / row["midi_performance"]), ttype="second").clip(0, played[cut]).dump_midi(
            str(performance))
        lines.append(json.dumps({"input": str(performance), "score": str(piece / "score.mid")}))
    manifest = folder / "pairs.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def same_outputs(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def kill_and_resume(inputs: Path, out: Path, count: int) -> dict:
    """Render with --jobs 2, SIGTERM once a third of the outputs exist, then resume; what was redone or left."""
    command = [*MAESTRO, "render", str(inputs), "--out-dir", str(out), "--jobs", "2", "--sample-rate", "16000",
               "-O", "channels=1"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finished() -> list[Path]:
        return sorted(p for p in out.glob("*.wav") if not p.name.startswith(".")) if out.is_dir() else []

    while len(finished()) < count // 3 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    proc.communicate()
    before = {p.name: p.stat().st_mtime_ns for p in finished()}
    temporary = [p.name for p in out.iterdir() if p.name.startswith(".")]
    import soundfile

    whole = all(soundfile.info(str(out / name)).frames > 0 for name in before)
    manifest = out.parent / "resume.jsonl"
    subprocess.run([*command, "--skip-existing", "--manifest", str(manifest)], capture_output=True, check=True)
    status = [json.loads(line)["status"] for line in manifest.read_text().splitlines()]
    redone = sum((out / name).stat().st_mtime_ns != mtime for name, mtime in before.items())
    return {"exit_code": proc.returncode, "done_before_kill": len(before), "temporary_files_left": len(temporary),
            "all_whole": whole, "redone": redone, "skipped": status.count("skipped"), "ok": status.count("ok"),
            "total_after_resume": len(finished())}


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--pieces", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--transcriber", default="onsets-frames", help="transcriber backend of the transcribe stage")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray executor")
    parser.add_argument("--stages", default="render,transcribe",
                        help="comma-separated: render, transcribe (reads render's outputs), align")
    args = parser.parse_args()
    configs = {"--jobs 1": ["--jobs", "1"], "--jobs 2": ["--jobs", "2"]}
    if not args.no_ray:
        configs["--executor ray"] = ["--executor", "ray"]
    work = Path(tempfile.mkdtemp(prefix="maestro-batch-bench-"))
    try:
        midi = work / "midi"
        count = len(maestro_excerpts(args.shared, midi, args.pieces, args.seconds))
        counts = {"render": count, "transcribe": count}
        if "align" in args.stages.split(","):
            pairs = asap_pairs(args.shared, work / "asap", args.seconds)
            counts["align"] = len(pairs.read_text().splitlines())
        stages = {"render": lambda out, extra: ["render", str(midi), "--out-dir", str(out), "--sample-rate", "16000",
                                                "-O", "channels=1", *extra],
                  "transcribe": lambda out, extra: ["transcribe", str(work / "render-jobs-1"), "--out-dir", str(out),
                                                    "-b", args.transcriber, *extra],
                  "align": lambda out, extra: ["align", str(work / "asap" / "pairs.jsonl"), "--out-dir", str(out),
                                               "--format", "notes", *extra]}
        seconds: dict[tuple[str, str], list[float]] = {}
        identical: dict[tuple[str, str], bool] = {}
        for stage, command in [(name, stages[name]) for name in args.stages.split(",")]:
            for round_ in range(args.rounds):
                for name, extra in configs.items():
                    out = work / f"{stage}-{name.strip('-').replace(' ', '-')}"
                    if round_ < args.rounds - 1 or out.exists():
                        shutil.rmtree(out, ignore_errors=True)
                    seconds.setdefault((stage, name), []).append(
                        run_process([*MAESTRO, *command(out, extra)], check=True).wall_s)
            for name in configs:
                identical[stage, name] = same_outputs(work / f"{stage}-jobs-1",
                                                      work / f"{stage}-{name.strip('-').replace(' ', '-')}")
        resume = kill_and_resume(midi, work / "resume", count)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    length = f"excerpts of {args.seconds:g} s" if args.seconds > 0 else "whole pieces"
    context = machine()
    results = table(f"maestro batch: {length} ({count} MAESTRO test pieces; align: {counts.get('align', 0)} ASAP "
                    f"performances), {context['cores']} cores, load {context['load_1min']:.1f}",
                    ("stage", "executor", "files", "wall s", "files/s", "speed-up", "same bytes as --jobs 1"), left=2)
    rows = []
    for (stage, name), times in seconds.items():
        best = min(times)
        base = min(seconds[stage, "--jobs 1"])
        rows.append({"stage": stage, "executor": name, "files": counts[stage], "seconds": round(best, 2),
                     "files_per_s": round(counts[stage] / best, 3), "speedup": round(base / best, 2),
                     "identical": identical[stage, name]})
        results.add_row(stage, name, str(counts[stage]), f"{best:.1f}", f"{counts[stage] / best:.2f}",
                        f"{base / best:.2f}x", "yes" if identical[stage, name] else "NO")
    progress = console()
    progress.print(results)
    progress.print(f"kill half-way and resume: {resume}")
    emit("batch", {"pieces": count, "seconds_each": args.seconds, **context, "rows": rows, "resume": resume})


if __name__ == "__main__":
    main()
