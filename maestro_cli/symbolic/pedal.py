"""The sustain pedal: how CC64 lengthens notes (Magenta's rule), shared by tokens, metrics and alignment."""

from __future__ import annotations

import numpy as np


def apply_sustain(notes: np.ndarray, pedal_events: np.ndarray | tuple) -> np.ndarray:
    """Lengthen notes held by the sustain pedal, Magenta's ``apply_sustain_control_changes`` rule.

    ``pedal_events`` is ``(times, values)`` of CC64 (value >= 64 is down). A note released while the pedal
    is down lasts until the pedal is lifted (or to the last event, if it never is); a note struck again
    ends the previous sounding note of the same pitch (notes reduced to zero length are dropped). Unlike
    Magenta, which does the latter only under the pedal, we always do it: a piano key sounds once.
    """
    times, values = (np.asarray(a) for a in pedal_events)
    times = times.astype(np.float64)
    down = values.astype(np.int64) >= 64
    order = np.lexsort((~down, times))  # Magenta processes pedal-down before pedal-up at equal times
    times, down = times[order], down[order]
    ends = notes["end_s"].astype(np.float64)
    last = max(ends.max(initial=0.0), times.max(initial=0.0))
    state = np.searchsorted(times, ends, side="right") - 1
    held = (state >= 0) & np.append(down, False)[state]
    releases = times[~down]
    nxt = np.searchsorted(releases, ends, side="right")
    ends = np.where(held, np.append(releases, last)[nxt], ends)
    out = notes.copy()
    out["end_s"] = ends
    return cut_restrikes(out, "start_s", "end_s")


def cut_restrikes(notes: np.ndarray, start: str, end: str) -> np.ndarray:
    """End every note at the next onset of its pitch; drop notes left without length. Sorted by onset."""
    starts = notes[start]
    order = np.lexsort((starts, notes["pitch"]))
    pitch, starts, ends = notes["pitch"][order], starts[order], notes[end][order]
    same = pitch[1:] == pitch[:-1]
    ends[:-1] = np.where(same, np.minimum(ends[:-1], starts[1:]), ends[:-1])
    keep = ends > starts
    order, starts, pitch = order[keep], starts[keep], pitch[keep]
    out = notes[order[np.lexsort((pitch, starts))]]
    out[end] = ends[keep][np.lexsort((pitch, starts))]
    return out
