"""Metric set ``generation``: statistics of generated MIDI against a MAESTRO split, and model NLL per event.

Used by ``maestro evaluate generation``. The statistics are those of :mod:`maestro_cli.metrics.generation`; the
reference is a seeded random sample of ``reference_pieces`` performances of the split (all of them with 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maestro_cli.hookspecs import hookimpl

#: Reference pieces sampled from the split by default (the test split has 177; all of them take about 4 s).
REFERENCE_PIECES = 50
SAMPLE_SEED = 0
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


class GenerationMetrics:
    """Compares generated MIDI files with a reference split; optionally reports a checkpoint's NLL."""

    def evaluate(self, inputs: list[str] | None, dataset: Path | None, split: str, checkpoint: Path | None,
                 plot: Path | None, as_json: bool, reference_pieces: int = REFERENCE_PIECES,
                 overwrite: bool = False) -> dict[str, Any]:
        """Print the report (a table, or one JSON object with ``as_json``) on stdout and return it."""
        from maestro_cli.cli.io import read_inputs
        from maestro_cli.data.maestro import default_root
        from maestro_cli.errors import MaestroError, UsageError

        paths = read_inputs(inputs, required=checkpoint is None)
        if plot is not None and not paths:
            raise UsageError("--plot needs generated MIDI files to compare")
        if plot is not None and plot.exists() and not overwrite:
            raise MaestroError("output exists; use --overwrite to replace it", plot)
        root = dataset if dataset is not None else default_root()
        report: dict[str, Any] = {"metric": "generation", "dataset": str(root), "split": split}
        if paths:
            report.update(self.statistics(paths, root, split, reference_pieces))
        if checkpoint is not None:
            report["nll"] = _nll(checkpoint, root, split)
        if plot is not None:
            _plot(plot, report["features"])
            report["plot"] = str(plot)
        _print(report, as_json)
        return report

    @staticmethod
    def statistics(paths: list[Path], root: Path, split: str, reference_pieces: int) -> dict[str, Any]:
        """Feature comparison of the MIDI files at ``paths`` with a sample of the split."""
        from maestro_cli.cli.io import report_failure
        from maestro_cli.errors import MaestroError
        from maestro_cli.metrics import generation as gm

        for path in paths:
            if not path.is_file():
                raise MaestroError("no such file", path)
        generated = [gm.load_notes(path) for path in paths]
        records = reference_records(root, split, reference_pieces)
        reference = []
        for record in records:
            try:
                reference.append(gm.load_notes(record.midi_path))
            except MaestroError as exc:
                report_failure(record.midi_path, exc)
        if not reference:
            raise MaestroError(f"no readable reference MIDI in split '{split}'", root)
        result = gm.compare(generated, reference)
        return {
            "generated": {"files": len(generated), "notes": sum(map(len, generated))},
            "reference": {"pieces": len(reference), "notes": sum(map(len, reference))},
            **result,
        }


def reference_records(root: Path, split: str, limit: int) -> list:
    """The records of ``split`` under ``root``: a seeded random sample of ``limit`` of them (all with 0)."""
    import numpy as np

    from maestro_cli.data.maestro import open_dataset
    from maestro_cli.errors import MaestroError

    records = open_dataset(root).filter(split=split).records
    if not records:
        raise MaestroError(f"no pieces in split '{split}'", root)
    if 0 < limit < len(records):
        chosen = np.random.default_rng(SAMPLE_SEED).choice(len(records), size=limit, replace=False)
        records = [records[i] for i in sorted(chosen)]
    return records


def _nll(checkpoint: Path, root: Path, split: str) -> dict[str, Any]:
    """NLL per event of ``checkpoint`` on the whole split, from the transformer generator's training module."""
    from maestro_cli.errors import MaestroError

    try:
        from maestro_cli.models.transformer_train import nll_on_split
    except ImportError as exc:
        raise MaestroError(f"--checkpoint needs the transformer generator backend, which is not installed ({exc})",
                           checkpoint) from None
    return nll_on_split(checkpoint, root, split)


def _plot(target: Path, features: dict[str, dict]) -> None:
    from maestro_cli import display as plots
    from maestro_cli.metrics.generation import FEATURES

    labels = {name: f"{f.label} ({f.unit})" if f.unit else f.label for name, f in FEATURES.items()}
    log_x = [name for name, f in FEATURES.items() if f.log_x]
    plots.distributions(target, features, labels, log_x=log_x, ticks={"pitch_class": PITCH_CLASSES})


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if abs(value) >= 100 else f"{value:.{digits}f}"


def _print(report: dict[str, Any], as_json: bool) -> None:
    """One JSON object (histograms included), or a rich table on stdout."""
    import json

    if as_json:
        print(json.dumps(report, default=str), flush=True)
        return
    from rich.console import Console
    from rich.table import Table

    from maestro_cli.metrics.generation import FEATURES

    out = Console(highlight=False)
    out.width = out.width if out.is_terminal else 120  # a file or a pipe gets whole column titles
    if "features" in report:
        gen, ref = report["generated"], report["reference"]
        table = Table(title=f"generation: {gen['files']} file(s) ({gen['notes']} notes) vs {ref['pieces']} "
                            f"{report['split']} pieces ({ref['notes']} notes)")
        for column in ("feature", "unit", "gen. mean", "ref. mean", "overlap", "KL (nats)"):
            table.add_column(column, justify="left" if column in ("feature", "unit") else "right")
        for name, row in report["features"].items():
            table.add_row(FEATURES[name].label, FEATURES[name].unit, _fmt(row["generated"]["mean"], 2),
                          _fmt(row["reference"]["mean"], 2), _fmt(row["overlap"]), _fmt(row["kl"]))
        summary = report["summary"]
        table.add_section()
        table.add_row("mean", "", "", "", _fmt(summary["overlap_mean"]), _fmt(summary["kl_mean"]), style="bold")
        out.print(table)
    if "nll" in report:
        nll = Table(title=f"model on {report['split']}")
        nll.add_column("statistic")
        nll.add_column("value", justify="right")
        for key, value in report["nll"].items():
            nll.add_row(key, _fmt(value, 4) if isinstance(value, float) else str(value))
        out.print(nll)
    if "plot" in report:
        out.print(f"plot: {report['plot']}")


@hookimpl
def register_metrics(register):
    register("generation", lambda options: GenerationMetrics(),
             description="Generated MIDI vs a MAESTRO split: feature overlap area and KL (Yang & Lerch 2018), NLL")
