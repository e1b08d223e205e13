"""Every plot (matplotlib, non-interactive Agg backend): piano rolls, transcription and alignment errors, distributions.

matplotlib is imported inside the functions, so importing this module stays cheap. Figures are written atomically
as PNG at a fixed pixel size (``width`` x ``height`` inches at ``dpi``), never with a tight bounding box.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from maestro_cli.outputs import atomic_output

#: Colour map for velocities (1..127).
VELOCITY_CMAP = "viridis"
PEDAL_COLOR = "#f4a261"


def figure(width: float, height: float, dpi: int = 100, nrows: int = 1, ncols: int = 1, **kwargs: Any):
    """A new figure and its axes, drawn with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(width, height), dpi=dpi, **kwargs)


def save(fig: Any, target: Path) -> Path:
    """Write ``fig`` as PNG to ``target`` atomically and close it."""
    import matplotlib.pyplot as plt

    with atomic_output(target) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi)
    plt.close(fig)
    return target


def draw_notes(ax: Any, notes: np.ndarray, *, by_velocity: bool = False, color: Any = "tab:blue", alpha: float = 1.0,
               height: float = 0.8, label: str | None = None) -> Any:
    """Draw notes (:data:`~maestro_cli.symbolic.notes.NOTE_DTYPE`) as horizontal bars on ``ax`` (seconds vs pitch).

    With ``by_velocity`` the bars are coloured by velocity (``VELOCITY_CMAP``, 0..127) and the returned collection
    can feed ``fig.colorbar``; otherwise they take ``color``. Returns the ``PolyCollection``.
    """
    from matplotlib.collections import PolyCollection

    onset, offset, pitch = (notes[name].astype(np.float64) for name in ("start_s", "end_s", "pitch"))
    width = np.maximum(offset - onset, 1e-3)
    low, high = pitch - height / 2, pitch + height / 2
    verts = np.stack([np.stack([onset, low], 1), np.stack([onset, high], 1),
                      np.stack([onset + width, high], 1), np.stack([onset + width, low], 1)], 1)
    bars = PolyCollection(verts, alpha=alpha, linewidths=0, label=label)
    if by_velocity:
        bars.set_array(notes["velocity"].astype(np.float64))
        bars.set_cmap(VELOCITY_CMAP)
        bars.set_clim(0, 127)
    else:
        bars.set_facecolor(color)
    ax.add_collection(bars)
    return bars


def draw_pedal(ax: Any, intervals: Sequence[tuple[float, float]], *, low: float, high: float,
               label: str = "sustain pedal") -> None:
    """Shade each ``(start_s, end_s)`` pedal interval as a band from ``low`` to ``high`` on the pitch axis."""
    for i, (start, end) in enumerate(intervals):
        ax.fill_between([start, end], low, high, color=PEDAL_COLOR, alpha=0.8, linewidth=0,
                        label=label if i == 0 else None)


def piano_roll_axes(ax: Any, pitch: np.ndarray, start: float, end: float, *, margin: int = 2) -> tuple[float, float]:
    """Set limits, labels and octave ticks of a piano-roll ``ax``; returns the pitch limits used."""
    low = float(np.min(pitch)) - margin if len(pitch) else 21.0
    high = float(np.max(pitch)) + margin if len(pitch) else 108.0
    ax.set_xlim(start, max(end, start + 1e-3))
    ax.set_ylim(low, high)
    ticks = [p for p in range(0, 128, 12) if low <= p <= high]
    ax.set_yticks(ticks, [f"C{p // 12 - 1}" for p in ticks])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("pitch")
    ax.grid(axis="y", color="0.9", linewidth=0.5)
    return low, high


def piano_roll(target: Path, notes: np.ndarray, pedals: Sequence[tuple[float, float]] = (), *, title: str = "",
               start: float | None = None, end: float | None = None, width: float = 12.0, height: float = 5.0,
               dpi: int = 100, deviations: Sequence[dict] = ()) -> Path:
    """Write a piano roll PNG of ``notes``: bars coloured by velocity, the sustain pedal as a band under the lowest
    note, and ``deviations`` from a score (dicts with ``kind``, ``time_s``, ``pitch``, ``played_pitch``) marked."""
    fig, ax = figure(width, height, dpi)
    start = float(np.min(notes["start_s"])) if start is None and len(notes) else (start or 0.0)
    end = float(np.max(notes["end_s"])) if end is None and len(notes) else (end if end is not None else start + 1.0)
    bars = draw_notes(ax, notes, by_velocity=True)
    low, high = piano_roll_axes(ax, notes["pitch"], start, end, margin=4)
    draw_pedal(ax, pedals, low=low, high=low + 1.5)
    draw_deviations(ax, deviations)
    fig.colorbar(bars, ax=ax, label="velocity", pad=0.01)
    if pedals or deviations:
        ax.legend(loc="upper right", fontsize="small")
    ax.set_title(title)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.11, top=0.92)
    return save(fig, target)


def draw_deviations(ax: Any, deviations: Sequence[dict]) -> None:
    """Missed score notes as hollow circles, extra notes as crosses, wrong pitches as a line from the score's pitch
    to the played one."""
    styles = {"missed": dict(marker="o", facecolors="none", edgecolors="tab:red"),
              "extra": dict(marker="x", color="tab:purple"), "wrong_pitch": dict(marker="D", color="tab:orange")}
    for kind, style in styles.items():
        rows = [row for row in deviations if row["kind"] == kind]
        if not rows:
            continue
        times = [row["time_s"] for row in rows]
        heard = [row["played_pitch"] if row.get("played_pitch") is not None else row["pitch"] for row in rows]
        ax.scatter(times, heard, s=36, linewidths=1.2, zorder=4, label=kind.replace("_", " "), **style)
        if kind == "wrong_pitch":
            ax.vlines(times, [row["pitch"] for row in rows], heard, colors="tab:orange", linewidths=1, zorder=3)


def distributions(target: Path, features: dict[str, dict], labels: dict[str, str], *, log_x: Sequence[str] = (),
                  ticks: dict[str, Sequence[str]] | None = None, names: tuple[str, str] = ("reference", "generated"),
                  width: float = 14.0, height: float = 6.0, dpi: int = 100) -> Path:
    """Write one panel per feature: the reference and generated histograms side by side, with overlap and KL.

    ``features`` maps a feature name to a dict with ``edges``, ``reference_hist``, ``generated_hist``, ``overlap``
    and ``kl`` (the shape :func:`maestro_cli.metrics.generation.compare` returns); ``labels`` gives panel titles and
    ``ticks`` optional x tick labels, one per bin.
    """
    ncols = 4
    nrows = -(-len(features) // ncols)
    fig, axes = figure(width, height, dpi, nrows, ncols, squeeze=False)
    for ax, (name, data) in zip(axes.flat, features.items()):
        edges = np.asarray(data["edges"], dtype=np.float64)
        if name in log_x:
            edges[0] = edges[1] / 2  # a visible first bin on a log axis
            ax.set_xscale("log")
        for hist, label, color in ((data["reference_hist"], names[0], "tab:gray"),
                                   (data["generated_hist"], names[1], "tab:orange")):
            ax.stairs(hist, edges, fill=True, alpha=0.45, color=color, label=label)
        score = "" if data["overlap"] is None else f"overlap {data['overlap']:.2f}, KL {data['kl']:.2f}"
        ax.set_title(f"{labels[name]}\n{score}", fontsize="medium")
        ax.set_yticks([])
        if ticks and name in ticks:
            ax.set_xticks((edges[:-1] + edges[1:]) / 2, ticks[name], fontsize="small")
    for ax in list(axes.flat)[len(features):]:
        ax.axis("off")
    handles, legend = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, legend, loc="lower right", bbox_to_anchor=(0.97, 0.15), fontsize="large")
    fig.subplots_adjust(left=0.03, right=0.98, bottom=0.08, top=0.9, wspace=0.15, hspace=0.6)
    return save(fig, target)


def transcription_roll(ref_notes, est_notes, out: Path, title: str = "") -> None:
    """Reference vs estimate piano roll: matched estimates green, false positives red, missed references orange."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from mir_eval.transcription import match_notes

    from maestro_cli.metrics.transcription import ONSET_TOLERANCE, to_mir_eval

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
            ax.barh(notes["pitch"][mask], iv[mask, 1] - iv[mask, 0], left=iv[mask, 0], height=0.8, **style)

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


def alignment_errors(ref_performance: np.ndarray, errors: np.ndarray, target: Path) -> None:
    """Error (ms) against reference performance time, with the 50 ms line, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(ref_performance, errors * 1000, ".", markersize=3)
    ax.axhline(50, color="tab:red", linewidth=0.8, label="50 ms")
    ax.set_xlabel("performance time (s)")
    ax.set_ylabel("absolute error (ms)")
    ax.set_yscale("symlog", linthresh=10)
    ax.legend(loc="upper right")
    fig.tight_layout()
    with atomic_output(target) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
