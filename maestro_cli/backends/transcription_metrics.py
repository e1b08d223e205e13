"""Metric set ``transcription``: note and frame scores of one pair of files or of two folders."""

from __future__ import annotations

from pathlib import Path

from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.hookspecs import hookimpl


class TranscriptionMetrics:
    """Scores estimated transcriptions against references (MIDI with pedal applied, or note CSV/TSV)."""

    def evaluate(self, ref: Path, est: Path) -> dict:
        """``{"rows": [one score dict per pair (+ their mean with several)], "missing": [stems without estimate]}``."""
        from maestro_cli.metrics import transcription as tm

        for path in (ref, est):
            if not path.exists():
                raise MaestroError("no such file or folder", path)
        if ref.is_dir() != est.is_dir():
            folder, other = (ref, est) if ref.is_dir() else (est, ref)
            raise UsageError(f"a folder, but {other} is a file: --ref and --est must both be files or both be folders",
                             folder)
        if ref.is_dir():
            pairs, missing = tm.pair_folders(ref, est)
        else:
            pairs, missing = [tm.Pair(est.stem, ref, est)], []
        rows = [{"name": pair.stem, "ref": str(pair.ref), "est": str(pair.est), **tm.evaluate_files(pair.ref, pair.est)}
                for pair in pairs]
        if len(rows) > 1:
            rows.append({"name": "mean", "files": len(rows), **tm.mean_scores(rows)})
        return {"rows": rows, "missing": list(missing)}


@hookimpl
def register_metrics(register):
    register("transcription", lambda options: TranscriptionMetrics(),
             description="Note P/R/F1 (onset, +offset, +velocity), frame F1 and sustain-pedal F1 with mir_eval")
