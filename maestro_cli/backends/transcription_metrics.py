"""Metric set ``transcription``: ``maestro evaluate transcription`` for one pair of files or two folders."""

from __future__ import annotations

from pathlib import Path

from maestro_cli.cliutil import console, emit
from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.hookspecs import hookimpl


class TranscriptionMetrics:
    """Scores estimated transcriptions against references (MIDI with pedal applied, or note CSV/TSV)."""

    def evaluate(self, ref: Path, est: Path, plot: Path | None = None, as_json: bool = False,
                 overwrite: bool = False) -> list[dict]:
        """Print one row per pair (and the mean in batch mode); return the rows."""
        from maestro_cli import transcription_metrics as tm

        if plot is not None and plot.exists() and not overwrite:
            raise MaestroError("output exists; use --overwrite to replace it", plot)

        for path in (ref, est):
            if not path.exists():
                raise MaestroError("no such file or folder", path)
        if ref.is_dir() != est.is_dir():
            raise UsageError("--ref and --est must both be files or both be folders")
        if ref.is_dir():
            if plot is not None:
                raise UsageError("--plot takes a single --ref/--est pair, not folders")
            pairs, missing = tm.pair_folders(ref, est)
            for stem in missing:
                console.print(f"warning: {stem}: no estimate in {est}", markup=False, highlight=False)
        else:
            pairs, missing = [tm.Pair(est.stem, ref, est)], []
        rows = []
        for pair in pairs:
            scores = tm.evaluate_files(pair.ref, pair.est)
            rows.append({"name": pair.stem, "ref": str(pair.ref), "est": str(pair.est), **scores})
        if len(rows) > 1:
            rows.append({"name": "mean", "files": len(rows), **tm.mean_scores(rows)})
        if as_json:
            for row in rows:
                emit(row, as_json=True)
        else:
            _print_table(rows)
        if plot is not None:
            from maestro_cli.notes import read_notes

            plot_piano_roll(read_notes(ref), read_notes(est), plot, title=f"{ref.name} vs {est.name}")
        return rows


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    pedal = any("pedal_f1" in row for row in rows)
    labels = ("file", "note P", "note R", "note F1", "+offset F1", "+off+vel F1", "frame F1") + \
        (("pedal F1", "pedal on F1") if pedal else ()) + ("ref", "est")
    for label in labels:
        table.add_column(label, justify="left" if label == "file" else "right", no_wrap=True)
    keys = ("note_precision", "note_recall", "note_f1", "note_offset_f1", "note_offset_velocity_f1", "frame_f1") + \
        (("pedal_f1", "pedal_onset_f1") if pedal else ())
    for row in rows:
        table.add_row(row["name"], *(f"{row[key]:.3f}" if key in row else "-" for key in keys),
                      f"{row['n_ref']:.0f}", f"{row['n_est']:.0f}")
    Console(width=max(len(row["name"]) for row in rows) + 90 + 24 * pedal).print(table)


def plot_piano_roll(ref_notes, est_notes, out: Path, title: str = "") -> None:
    """Reference vs estimate piano roll: matched estimates green, false positives red, missed references orange."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from mir_eval.transcription import match_notes

    from maestro_cli.cliutil import atomic_output
    from maestro_cli.transcription_metrics import ONSET_TOLERANCE, to_mir_eval

    ref_iv, ref_hz, _ = to_mir_eval(ref_notes)
    est_iv, est_hz, _ = to_mir_eval(est_notes)
    matched = match_notes(ref_iv, ref_hz, est_iv, est_hz, onset_tolerance=ONSET_TOLERANCE, offset_ratio=None)
    ref_hit = np.zeros(len(ref_iv), dtype=bool)
    est_hit = np.zeros(len(est_iv), dtype=bool)
    for i, j in matched:
        ref_hit[i], est_hit[j] = True, True
    end = max([float(iv[:, 1].max()) for iv in (ref_iv, est_iv) if len(iv)], default=1.0)
    fig, ax = plt.subplots(figsize=(min(4 + end / 2, 40), 6), dpi=100)

    def bars(notes, iv, mask, **style):
        if mask.any():
            ax.barh(notes[mask, 2], iv[mask, 1] - iv[mask, 0], left=iv[mask, 0], height=0.8, **style)

    bars(ref_notes, ref_iv, ref_hit, color="0.8", label=f"reference, found ({ref_hit.sum()})")
    bars(ref_notes, ref_iv, ~ref_hit, color="none", edgecolor="tab:orange", linewidth=1.2,
         label=f"reference, missed ({(~ref_hit).sum()})")
    bars(est_notes, est_iv, est_hit, color="tab:green", alpha=0.6, label=f"estimate, correct ({est_hit.sum()})")
    bars(est_notes, est_iv, ~est_hit, color="tab:red", alpha=0.6, label=f"estimate, wrong ({(~est_hit).sum()})")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


@hookimpl
def register_metrics(register):
    register("transcription", lambda options: TranscriptionMetrics(),
             description="Note P/R/F1 (onset, +offset, +velocity), frame F1 and sustain-pedal F1 with mir_eval")
