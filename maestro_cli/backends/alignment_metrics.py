"""Metric set ``alignment`` (``maestro evaluate alignment``): error of an estimated time map at reference points,
or, for note-level alignments (match files, notes CSVs), P/R/F of matched pairs, deletions and insertions."""

from __future__ import annotations

from pathlib import Path

from maestro_cli.hookspecs import hookimpl


class AlignmentMetrics:
    """mean / median / p90 absolute error and % within 25/50/100/200 ms; note-level P/R/F."""

    def evaluate(self, ref: list[Path], est: Path, plot: Path | None = None, as_json: bool = False,
                 score: Path | None = None) -> dict:
        from maestro_cli import alignment_metrics as metrics
        from maestro_cli.align.notes import is_note_alignment, read_reference
        from maestro_cli.alignment_io import read_alignment
        from maestro_cli.cliutil import emit

        note_level = len(ref) == 1 and is_note_alignment(ref[0])
        if note_level and is_note_alignment(est):
            summary = metrics.note_alignment_scores(read_reference(est), read_reference(ref[0]))
            if as_json:
                emit({"ref": [str(path) for path in ref], "est": str(est), **summary}, as_json=True)
            else:
                _print_note_table(summary)
            return summary
        if note_level:
            from maestro_cli.align.notes import reference_points

            ref_score, ref_performance = reference_points(ref[0], score)
        else:
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


def _print_note_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, caption=f"{summary['score_notes']} score notes in the reference, "
                  f"{summary['unscored']} estimated score notes it does not mention (not scored)")
    for column in ("", "precision", "recall", "F", "estimated", "reference"):
        table.add_column(column, justify="right")
    for label in ("match", "deletion", "insertion"):
        table.add_row(label, *(f"{summary[f'{label}_{key}']:.3f}" for key in ("precision", "recall", "f")),
                      str(summary[f"{label}_est"]), str(summary[f"{label}_ref"]))
    Console(width=160).print(table)


@hookimpl
def register_metrics(register):
    register("alignment", lambda options: AlignmentMetrics(), description="alignment error at reference points (ms, % within)")
