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


class GenerationMetrics:
    """Compares generated MIDI files with a reference split; optionally reports a checkpoint's NLL."""

    def evaluate(self, paths: list[Path], dataset: Path | None, split: str, checkpoint: Path | None,
                 reference_pieces: int = REFERENCE_PIECES) -> dict[str, Any]:
        """The report: feature comparison of ``paths`` with the split (if any), NLL of ``checkpoint`` (if given)."""
        from maestro_cli.data.maestro import default_root

        root = dataset if dataset is not None else default_root()
        report: dict[str, Any] = {"metric": "generation", "dataset": str(root), "split": split}
        if paths:
            report.update(self.statistics(paths, root, split, reference_pieces))
        if checkpoint is not None:
            report["nll"] = _nll(checkpoint, root, split)
        return report

    @staticmethod
    def statistics(paths: list[Path], root: Path, split: str, reference_pieces: int) -> dict[str, Any]:
        """Feature comparison of the MIDI files at ``paths`` with a sample of the split (``unreadable``: skipped)."""
        from maestro_cli.errors import MaestroError
        from maestro_cli.metrics import generation as gm
        from maestro_cli.symbolic.midi import read_midi

        for path in paths:
            if not path.is_file():
                raise MaestroError("no such file", path)
        generated = [read_midi(path).sounding() for path in paths]
        records = reference_records(root, split, reference_pieces)
        reference, unreadable = [], []
        for record in records:
            try:
                reference.append(read_midi(record.midi_path).sounding())
            except MaestroError as exc:
                unreadable.append({"path": str(record.midi_path), "error": exc.message})
        if not reference:
            raise MaestroError(f"no readable reference MIDI in split '{split}'", root)
        result = gm.compare(generated, reference)
        return {
            "generated": {"files": len(generated), "notes": sum(map(len, generated))},
            "reference": {"pieces": len(reference), "notes": sum(map(len, reference)), "unreadable": unreadable},
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
        from maestro_cli.models.transformer_nll import nll_on_split
    except ImportError as exc:
        raise MaestroError(f"--checkpoint needs the transformer generator backend, which is not installed ({exc})",
                           checkpoint) from None
    return nll_on_split(checkpoint, root, split)


@hookimpl
def register_metrics(register):
    register("generation", lambda options: GenerationMetrics(),
             description="Generated MIDI vs a MAESTRO split: feature overlap area and KL (Yang & Lerch 2018), NLL")
