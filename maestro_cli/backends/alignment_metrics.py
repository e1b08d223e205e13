"""Metric set ``alignment``: error of an estimated alignment at reference points (``maestro evaluate alignment``)."""

from __future__ import annotations

from pathlib import Path

from maestro_cli.hookspecs import hookimpl


class AlignmentMetrics:
    """mean / median / p90 absolute error and % within 25/50/100/200 ms."""

    def evaluate(self, ref: list[Path], est: Path, plot: Path | None = None, as_json: bool = False) -> dict:
        from maestro_cli.align.io import read_alignment
        from maestro_cli.cli.io import emit
        from maestro_cli.metrics import alignment as metrics

        ref_score, ref_performance = metrics.load_reference(list(ref))
        est_score, est_performance, _ = read_alignment(est)
        errors = metrics.alignment_errors(ref_score, ref_performance, est_score, est_performance)
        summary = metrics.summarize(errors)
        if plot is not None:
            metrics.plot_errors(ref_performance, errors, plot)
        if as_json:
            emit({"ref": [str(path) for path in ref], "est": str(est), **summary}, as_json=True)
        else:
            _print_table(summary)
        return summary


def _print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for key in summary:
        table.add_column(key.replace("_", " "), justify="right")
    table.add_row(*(str(value) if isinstance(value, int) else f"{value:.1f}" for value in summary.values()))
    Console(width=160).print(table)


@hookimpl
def register_metrics(register):
    register("alignment", lambda options: AlignmentMetrics(), description="alignment error at reference points (ms, % within)")
