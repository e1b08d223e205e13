"""Metric set ``alignment`` (``maestro evaluate alignment``): error of an estimated time map at reference points,
or, for note-level alignments (match files, notes CSVs), P/R/F of matched pairs, deletions and insertions."""

from __future__ import annotations

from pathlib import Path

from maestro_cli.hookspecs import hookimpl


class AlignmentMetrics:
    """mean / median / p90 absolute error and % within 25/50/100/200 ms; note-level P/R/F."""

    def evaluate(self, ref: list[Path], est: Path, score: Path | None = None) -> dict:
        """Note-level scores (``level: "notes"``) when both sides are note alignments; else the time-map error
        summary (``level: "time"``) with ``point_errors``: each reference point's performance time and error (s)."""
        from maestro_cli.align.io import read_alignment
        from maestro_cli.align.notes import is_note_alignment, read_reference
        from maestro_cli.metrics import alignment as metrics

        names = {"ref": [str(path) for path in ref], "est": str(est)}
        note_level = len(ref) == 1 and is_note_alignment(ref[0])
        if note_level and is_note_alignment(est):
            return {**names, "level": "notes",
                    **metrics.note_alignment_scores(read_reference(est), read_reference(ref[0]))}
        if note_level:
            from maestro_cli.align.notes import reference_points

            ref_score, ref_performance = reference_points(ref[0], score)
        else:
            ref_score, ref_performance = metrics.load_reference(list(ref))
        est_score, est_performance, _ = read_alignment(est)
        errors = metrics.alignment_errors(ref_score, ref_performance, est_score, est_performance)
        return {**names, "level": "time", **metrics.summarize(errors),
                "point_errors": {"performance_s": ref_performance.tolist(), "error_s": errors.tolist()}}


@hookimpl
def register_metrics(register):
    register("alignment", lambda options: AlignmentMetrics(),
             description="time-map error at reference points (ms, % within); note-level P/R/F of matches")
