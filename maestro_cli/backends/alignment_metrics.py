"""Metric set ``alignment``: error of an estimated alignment at reference points (``maestro evaluate alignment``)."""

from __future__ import annotations

from pathlib import Path

from maestro_cli.hookspecs import hookimpl


class AlignmentMetrics:
    """mean / median / p90 absolute error and % within 25/50/100/200 ms."""

    def evaluate(self, ref: list[Path], est: Path) -> dict:
        """The summary, plus ``points``: each reference point's performance time (s) and absolute error (s)."""
        from maestro_cli.align.io import read_alignment
        from maestro_cli.metrics import alignment as metrics

        ref_score, ref_performance = metrics.load_reference(list(ref))
        est_score, est_performance, _ = read_alignment(est)
        errors = metrics.alignment_errors(ref_score, ref_performance, est_score, est_performance)
        return {"ref": [str(path) for path in ref], "est": str(est), **metrics.summarize(errors),
                "points": {"performance_s": ref_performance.tolist(), "error_s": errors.tolist()}}


@hookimpl
def register_metrics(register):
    register("alignment", lambda options: AlignmentMetrics(), description="alignment error at reference points (ms, % within)")
