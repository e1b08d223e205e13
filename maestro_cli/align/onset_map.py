"""An audio-to-score time map refined by note onsets: the recording's transcription matched to the score notes
around the coarse feature path (chroma/DLNCO DTW), the matched onsets as the map, the feature path wherever no
notes pinned it.

1. Match (:func:`maestro_cli.align.note_matching.refine`): score chords and transcribed chords aligned in order
   within :data:`BAND` seconds of the feature path, then same-pitch notes paired within narrowing windows
   (:data:`WINDOWS`) around the map of the previous step.
2. Pins: each score onset with matched notes (grace notes aside: their written time is nominal) gives one point,
   the median onset of its matched notes, weighted by their number; points further than :data:`BAND` from the
   feature path are dropped, so are strays (pins no second witness backs: a single note, or notes not struck
   together, further than :data:`TOLERANCE` both from the feature path and from the interpolation between their
   neighbours, :func:`_local_prediction`), and of the rest the chain strictly increasing in score and
   performance time with the most matched notes is kept.
3. Fallback: before the first and after the last pin, and between two pins more than :data:`FALLBACK_S` score
   seconds apart, the map is the feature path, shifted (linearly across the span) to meet the pins at its ends.
   Elsewhere it is linear between pins.

The transcriber is the caller's (:mod:`maestro_cli.align.transcribed`). The constants are the MIDI route's or
round figures; none was searched on annotated data (docs/align.md says which design choices followed a look at
the MAPS results).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from maestro_cli.align.note_matching import CHORD_SPREAD, TEMPO_SPAN

#: Half-width in seconds around the feature path within which transcribed notes may pin the map: the feature
#: path's gross errors are rarer than a transcription's stray notes, so the pins stay near it.
BAND = 1.0
#: Note-matching windows (seconds), widest first: the MIDI route's defaults (``match_window`` 0.35 and a third).
WINDOWS = (0.35, 0.35 / 3)
#: A pin is a stray (a late or wrongly matched transcribed note) when no second witness backs it: it is further
#: than this many seconds both from the feature path and from the interpolation between its neighbours (up to
#: :data:`NEIGHBOURS` on each side, within :data:`REACH` score seconds, :func:`_local_prediction`), and it is
#: not two or more notes struck together (within the chord spread).
TOLERANCE = 0.05
NEIGHBOURS = 3
#: Score seconds over which the tempo is taken as steady (the note matching's TEMPO_SPAN, and the span of
#: note_matching.extrapolated): how far a stray's neighbours may be, and the longest span between two pins that
#: is linear; a longer one follows the feature path.
REACH = TEMPO_SPAN
FALLBACK_S = TEMPO_SPAN


@dataclass
class OnsetMap:
    """The refined map, how many notes and score onsets pinned it, and the score-time spans (seconds) where it
    follows the feature path."""

    score_times: np.ndarray
    performance_times: np.ndarray
    pinned_notes: int
    pinned_onsets: int
    score_onsets: int
    fallback_spans: list[tuple[float, float]] = field(default_factory=list)
    matching: object = None  # the maestro_cli.align.note_matching.Matching of score and transcribed notes

    def info(self) -> dict:
        """The sidecar fields."""
        return {"pinned_notes": self.pinned_notes, "pinned_onsets": self.pinned_onsets,
                "score_onsets": self.score_onsets,
                "fallback_spans_s": [[round(a, 3), round(b, 3)] for a, b in self.fallback_spans]}


def pins(score_notes: np.ndarray, played: np.ndarray, matching, feature_s: np.ndarray, feature_p: np.ndarray,
         band: float = BAND) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score onset, median matched onset, matched notes) of the heaviest increasing chain of pinned onsets."""
    from maestro_cli.align.note_matching import extrapolated, heaviest_chain

    keep = ~score_notes["grace"][matching.score_index]
    s = np.round(score_notes["start_s"][matching.score_index[keep]], 4)
    p = played["start_s"][matching.performance_index[keep]]
    if len(s) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, int)
    times, inverse = np.unique(s, return_inverse=True)
    medians = np.array([np.median(p[inverse == k]) for k in range(len(times))])
    spread = np.array([np.ptp(p[inverse == k]) for k in range(len(times))])
    weights = np.bincount(inverse, minlength=len(times))
    offset = medians - extrapolated(times, feature_s, feature_p)
    near = np.abs(offset) <= band
    times, medians, weights, spread, offset = times[near], medians[near], weights[near], spread[near], offset[near]
    agreed = (weights >= 2) & (spread <= CHORD_SPREAD)  # notes struck together
    steady = (agreed | (np.abs(offset) <= TOLERANCE)
              | (np.abs(medians - _local_prediction(times, medians, NEIGHBOURS)) <= TOLERANCE))
    times, medians, weights = times[steady], medians[steady], weights[steady]
    if len(times) == 0:
        return times, medians, weights
    ranks = np.unique(medians, return_inverse=True)[1]
    chain = heaviest_chain(np.arange(len(times)), ranks, weights.astype(float), int(ranks.max()) + 1)
    return times[chain], medians[chain], weights[chain]


def _local_prediction(times: np.ndarray, values: np.ndarray, count: int, reach: float = REACH) -> np.ndarray:
    """For each point, the median of the lines through one of its ``count`` neighbours before and one after it
    (within ``reach`` seconds of its time), evaluated at its time: an interpolation that one stray neighbour
    cannot pull. Its own value where it has no neighbour in reach on either side."""
    out = values.copy()
    for k in range(1, len(times) - 1):
        before, after = np.arange(max(0, k - count), k), np.arange(k + 1, min(len(times), k + count + 1))
        before, after = before[times[k] - times[before] <= reach], after[times[after] - times[k] <= reach]
        if not len(before) or not len(after):
            continue
        a, b = np.repeat(before, len(after)), np.tile(after, len(before))
        slope = (values[b] - values[a]) / (times[b] - times[a])
        out[k] = np.median(values[a] + slope * (times[k] - times[a]))
    return out


def onset_map(score_notes: np.ndarray, played: np.ndarray, feature_s: np.ndarray, feature_p: np.ndarray,
              band: float = BAND, windows: tuple[float, ...] = WINDOWS,
              fallback_s: float = FALLBACK_S) -> OnsetMap:
    """The map from score time to performance time pinned by ``played`` (transcribed notes, NOTE_DTYPE, sorted by
    onset) matched to ``score_notes`` (SCORE_DTYPE) around the feature path ``(feature_s, feature_p)``."""
    from maestro_cli.align.note_matching import refine

    onsets = np.unique(np.round(score_notes["start_s"][~score_notes["grace"]], 4))
    feature_s, feature_p = np.asarray(feature_s, float), np.asarray(feature_p, float)
    if len(played) == 0:
        return OnsetMap(feature_s, feature_p, 0, 0, len(onsets), [(float(feature_s[0]), float(feature_s[-1]))])
    _, _, matching = refine(score_notes, played, feature_s, feature_p, windows=windows, second_chance=0.0,
                            band=band)
    pin_s, pin_p, weight = pins(score_notes, played, matching, feature_s, feature_p, band)
    if len(pin_s) < 2:
        return OnsetMap(feature_s, feature_p, 0, 0, len(onsets), [(float(feature_s[0]), float(feature_s[-1]))],
                        matching)
    parts_s, parts_p, spans = [], [], []
    first = feature_s < pin_s[0]  # before the first pin: the feature path, shifted to meet it
    if first.any():
        shift = pin_p[0] - np.interp(pin_s[0], feature_s, feature_p)
        parts_s.append(feature_s[first])
        parts_p.append(feature_p[first] + shift)
        spans.append((float(feature_s[first][0]), float(pin_s[0])))
    for k in range(len(pin_s)):
        parts_s.append(pin_s[k:k + 1])
        parts_p.append(pin_p[k:k + 1])
        if k + 1 < len(pin_s) and pin_s[k + 1] - pin_s[k] > fallback_s:
            a, b = pin_s[k], pin_s[k + 1]
            inside = (feature_s > a) & (feature_s < b)
            if inside.any():
                offset_a = pin_p[k] - np.interp(a, feature_s, feature_p)
                offset_b = pin_p[k + 1] - np.interp(b, feature_s, feature_p)
                s = feature_s[inside]
                p = feature_p[inside] + offset_a + (offset_b - offset_a) * (s - a) / (b - a)
                fits = (p > pin_p[k]) & (p < pin_p[k + 1])
                s, p = s[fits], p[fits]
                kept = _increasing(p)
                parts_s.append(s[kept])
                parts_p.append(p[kept])
            spans.append((float(a), float(b)))
    last = feature_s > pin_s[-1]  # after the last pin: likewise
    if last.any():
        shift = pin_p[-1] - np.interp(pin_s[-1], feature_s, feature_p)
        parts_s.append(feature_s[last])
        parts_p.append(feature_p[last] + shift)
        spans.append((float(pin_s[-1]), float(feature_s[last][-1])))
    s, p = np.concatenate(parts_s), np.concatenate(parts_p)
    kept = _increasing(p)  # the shifted ends may overlap the pins only when the feature path is flat there
    return OnsetMap(s[kept], p[kept], int(weight.sum()), len(pin_s), len(onsets), _merged(spans), matching)


def _increasing(values: np.ndarray) -> np.ndarray:
    from maestro_cli.align.note_matching import longest_increasing

    return longest_increasing(values) if len(values) else np.zeros(0, int)


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Touching spans joined."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
