"""Note alignment and score formats, side by side in one run.

1. Vienna 4x22 (MusicXML scores, performance MIDI, ground-truth match files): every performance aligned note by
   note with each aligner (``maestro align --format notes``), scored against its match file: precision, recall
   and F-measure of matched pairs, deletions and insertions (pooled over performances, and the mean per piece).
2. ASAP sample: every performance MIDI aligned to the MusicXML score and to the MIDI score with ``dtw``; % of
   annotated beats within 50 ms. The annotations are in MIDI-score seconds: for the MusicXML route they are
   carried to the MusicXML score's seconds along a DTW between the two scores' onset sequences (pitch sets).

Prints tables on stderr and one JSON line on stdout.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from common import ASAP, MAESTRO, VIENNA, argument_parser, asap_performances, console, emit, run_process, table
from rich.console import Console

from maestro_cli.align.io import read_alignment
from maestro_cli.align.notes import read_reference
from maestro_cli.metrics import alignment as metrics

LABELS = ("match", "deletion", "insertion")


REUSE = False  # --reuse: keep outputs of an earlier run (CPU time then not measured)


def align(performance: Path, score: Path, backend: str, out: Path, out_format: str) -> tuple[float, bool, str]:
    """CPU seconds, success and stderr of one ``maestro align`` process."""
    if REUSE and out.is_file():
        return 0.0, True, ""
    done = run_process([*MAESTRO, "align", performance, "--score", score, "-b", backend, "--format", out_format,
                        "-o", out, "--overwrite"])
    return done.cpu_s, done.ok, done.stderr


def vienna(root: Path, backends: list[str], work: Path, progress: Console) -> list[dict]:
    rows = []
    for backend in backends:
        pooled = {label: [0, 0, 0] for label in LABELS}  # correct, estimated, reference
        per_piece, seconds = [], 0.0
        for match in sorted((root / "match").glob("*.match")):
            piece = match.stem.rsplit("_", 1)[0]
            out = work / f"{match.stem}.{backend}.notes.csv"
            took, ok, error = align(root / "midi" / f"{match.stem}.mid", root / "musicxml" / f"{piece}.musicxml",
                                    backend, out, "notes")
            seconds += took
            if not ok:
                progress.print(f"{match.stem} {backend}: failed {error.strip()[-300:]}")
                continue
            scores = metrics.note_alignment_scores(read_reference(out), read_reference(match))
            for label in LABELS:
                est, ref = scores[f"{label}_est"], scores[f"{label}_ref"]
                pooled[label][0] += round(scores[f"{label}_precision"] * est)
                pooled[label][1] += est
                pooled[label][2] += ref
            per_piece.append(scores["match_f"])
            progress.print(f"{match.stem} {backend}: match F {100 * scores['match_f']:.1f}, deletion F "
                          f"{100 * scores['deletion_f']:.1f}, insertion F {100 * scores['insertion_f']:.1f}, "
                          f"{took:.1f} s CPU", highlight=False)
        row = {"backend": backend, "performances": len(per_piece), "cpu_s": seconds,
               "match_f_mean": float(np.mean(per_piece)) if per_piece else float("nan")}
        for label, (correct, est, ref) in pooled.items():
            precision, recall = correct / max(est, 1), correct / max(ref, 1)
            row[f"{label}_precision"], row[f"{label}_recall"] = precision, recall
            row[f"{label}_f"] = 2 * precision * recall / max(precision + recall, 1e-12)
        rows.append(row)
    progress.print(table(
        "Vienna 4x22, note alignment vs the match files (pooled)",
        ("backend", "perfs", "match P", "match R", "match F", "mean F / perf", "deletion F", "insertion F", "CPU s"),
        [(row["backend"], row["performances"], *(f"{100 * row[k]:.1f}" for k in (
            "match_precision", "match_recall", "match_f", "match_f_mean", "deletion_f", "insertion_f")),
          f"{row['cpu_s']:.0f}") for row in rows]))
    return rows


def asap(root: Path, work: Path, progress: Console, per_piece: int) -> list[dict]:
    from maestro_cli.symbolic.scores import read_score

    results = {"MIDI score": [], "MusicXML score": []}
    seconds = {"MIDI score": 0.0, "MusicXML score": 0.0}
    variants, midi_notes = [], {}
    for record in asap_performances(root, per_piece):
        midi_score, name = record["score"], record["name"].replace("/", "_")
        xml_score = midi_score.with_name("xml_score.musicxml")
        if midi_score not in midi_notes:
            midi_notes[midi_score] = read_score(midi_score).notes
        ref_score, ref_perf = metrics.load_reference([record["score_ann"], record["perf_ann"]])
        for route, score in (("MIDI score", midi_score), ("MusicXML score", xml_score)):
            out = work / f"{name}.{route.split()[0]}.csv"
            took, ok, error = align(record["midi"], score, "dtw", out, "csv")
            seconds[route] += took
            if not ok:
                progress.print(f"{name} {route}: failed {error.strip()[-300:]}")
                continue
            s, p, info = read_alignment(out)
            points = ref_score
            if route == "MusicXML score":
                xml = read_score(xml_score, unfold=info.get("score_variant") == "unfolded").notes
                points, shared = midi_to_xml_seconds(ref_score, midi_notes[midi_score], xml)
                variants.append({"performance": name, "variant": info.get("score_variant"),
                                 "notes_coinciding": shared})
            errors = metrics.alignment_errors(points, ref_perf, s, p)
            results[route].append(errors)
            progress.print(f"{name} {route}: {100 * np.mean(errors <= 0.05 + 1e-9):.1f} % within 50 ms "
                          f"({info.get('score_variant', '')}), {took:.1f} s CPU", highlight=False)
    out = table("ASAP sample, performance MIDI -> score, dtw, % of beats within 50 ms (pooled)",
                ("score", "beats", "mean ms", "median ms", "≤25", "≤50", "≤100", "CPU s"))
    rows = []
    for route, errors in results.items():
        if not errors:
            continue
        stats = metrics.summarize(np.concatenate(errors))
        rows.append({"route": route, "performances": len(errors), "cpu_s": seconds[route], **stats})
        out.add_row(route, str(stats["points"]), f"{stats['mean_ms']:.1f}", f"{stats['median_ms']:.1f}",
                    *(f"{stats[f'within_{t}ms']:.1f}" for t in (25, 50, 100)), f"{seconds[route]:.0f}")
    progress.print(out)
    return rows + [{"variants": variants}]


def midi_to_xml_seconds(times: np.ndarray, midi: np.ndarray, xml: np.ndarray) -> tuple[np.ndarray, float]:
    """MIDI-score seconds -> MusicXML-score seconds through corresponding onsets of the two scores; also the
    share of MIDI-score onsets whose chord is identical in the MusicXML score.

    The onsets correspond along a DTW between the two onset sequences (cost: 1 - Jaccard similarity of their
    pitch sets), so a repeat written out differently or a pickup bar shifts nothing after it.
    """
    m_times, m_sets = _chords(midi)
    x_times, x_sets = _chords(xml)
    cost = np.array([[1 - len(a & b) / len(a | b) for b in x_sets] for a in m_sets])
    n, k = cost.shape
    acc = np.full((n + 1, k + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, k + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    i, j, pairs = n, k, []
    while i > 0 and j > 0:
        if cost[i - 1, j - 1] == 0:
            pairs.append((m_times[i - 1], x_times[j - 1]))
        step = int(np.argmin([acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]]))
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
    pairs = np.array(sorted(pairs))
    return _interp(times, pairs[:, 0], pairs[:, 1]), len(pairs) / n


def _chords(notes: np.ndarray) -> tuple[np.ndarray, list[set]]:
    """Distinct onset times (seconds) and the pitch set at each."""
    times, inverse = np.unique(np.round(notes["start_s"], 4), return_inverse=True)
    return times, [set(notes["pitch"][inverse == k].tolist()) for k in range(len(times))]


def _interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    xp, first = np.unique(xp, return_index=True)
    return metrics.map_times(np.asarray(x, float), xp, np.asarray(fp)[first])


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--backends", default="dtw,parangonar", help="comma-separated aligners for Vienna 4x22")
    parser.add_argument("--per-piece", type=int, default=0, help="ASAP: at most N performances per piece (0: all)")
    parser.add_argument("--no-asap", action="store_true", help="only the Vienna 4x22 part")
    parser.add_argument("--reuse", action="store_true", help="keep the alignments of an earlier run in --work")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "maestro-bench-note-align")
    args = parser.parse_args()
    global REUSE
    REUSE = args.reuse
    progress = console(width=200)
    args.work.mkdir(parents=True, exist_ok=True)
    notes = vienna(args.shared / VIENNA, args.backends.split(","), args.work, progress)
    beats = [] if args.no_asap else asap(args.shared / ASAP, args.work, progress, args.per_piece)
    emit("note_align", {"vienna4x22": notes, "asap": beats})


if __name__ == "__main__":
    main()
