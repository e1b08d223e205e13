"""Note-level matching of a performance to a score, guided by a coarse time map.

Every score note is paired with at most one performance note of the same pitch whose onset lies within a
window around the score note's mapped time (closest pairs first). Unpaired score notes are deletions, unpaired
performance notes insertions (wrong notes count as one of each). The matched onsets, one median per score
onset time, kept in strictly increasing order (longest increasing subsequence), form the refined map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Matching:
    """Indices of matched score and performance notes, and the counts of the three outcomes."""

    score_index: np.ndarray
    performance_index: np.ndarray
    deletions: int
    insertions: int

    @property
    def matches(self) -> int:
        return len(self.score_index)

    def f_measure(self, n_score: int, n_performance: int) -> float:
        return 2.0 * self.matches / max(1, n_score + n_performance)


def match_notes(score_notes: np.ndarray, performance_notes: np.ndarray, map_score: np.ndarray,
                map_performance: np.ndarray, window: float) -> Matching:
    """Greedy closest-first matching of same-pitch notes within ``window`` seconds of the mapped onset."""
    predicted = extrapolated(score_notes["start_s"], map_score, map_performance)
    perf_onsets = performance_notes["start_s"]
    cand_s, cand_p, cand_d = [], [], []
    for pitch in np.intersect1d(score_notes["pitch"], performance_notes["pitch"]):
        s_idx = np.flatnonzero(score_notes["pitch"] == pitch)
        p_idx = np.flatnonzero(performance_notes["pitch"] == pitch)
        p_idx = p_idx[np.argsort(perf_onsets[p_idx], kind="stable")]
        times = perf_onsets[p_idx]
        lo = np.searchsorted(times, predicted[s_idx] - window)
        hi = np.searchsorted(times, predicted[s_idx] + window)
        for s, a, b in zip(s_idx, lo, hi):
            if b > a:
                cand_s.append(np.full(b - a, s))
                cand_p.append(p_idx[a:b])
                cand_d.append(np.abs(times[a:b] - predicted[s]))
    if not cand_s:
        return Matching(np.zeros(0, int), np.zeros(0, int), len(score_notes), len(performance_notes))
    cs, cp, cd = np.concatenate(cand_s), np.concatenate(cand_p), np.concatenate(cand_d)
    used_s = np.zeros(len(score_notes), bool)
    used_p = np.zeros(len(performance_notes), bool)
    pairs_s, pairs_p = [], []
    for k in np.argsort(cd, kind="stable"):
        if not used_s[cs[k]] and not used_p[cp[k]]:
            used_s[cs[k]] = used_p[cp[k]] = True
            pairs_s.append(cs[k])
            pairs_p.append(cp[k])
    order = np.argsort(pairs_s)
    score_index = np.asarray(pairs_s, int)[order]
    return Matching(score_index, np.asarray(pairs_p, int)[order],
                    len(score_notes) - len(pairs_s), len(performance_notes) - len(pairs_p))


def extrapolated(times: np.ndarray, map_score: np.ndarray, map_performance: np.ndarray,
                 span: float = 4.0) -> np.ndarray:
    """The map at ``times``: linear inside, beyond its ends the mean tempo of its first/last ``span`` seconds
    (a flat continuation would pile all later score notes onto the last mapped time)."""
    times = np.asarray(times, dtype=np.float64)
    out = np.interp(times, map_score, map_performance)
    if len(map_score) < 2:
        return out
    head = min(int(np.searchsorted(map_score, map_score[0] + span)), len(map_score) - 1)
    tail = max(int(np.searchsorted(map_score, map_score[-1] - span)) - 1, 0)
    head_slope = (map_performance[head] - map_performance[0]) / (map_score[head] - map_score[0])
    tail_slope = (map_performance[-1] - map_performance[tail]) / (map_score[-1] - map_score[tail])
    before, after = times < map_score[0], times > map_score[-1]
    out[before] = map_performance[0] + head_slope * (times[before] - map_score[0])
    out[after] = map_performance[-1] + tail_slope * (times[after] - map_score[-1])
    return out


def longest_increasing(values: np.ndarray) -> np.ndarray:
    """Indices of a longest strictly increasing subsequence of ``values`` (O(n log n))."""
    tails: list[float] = []
    tail_index: list[int] = []
    parent = np.full(len(values), -1)
    for i, value in enumerate(values):
        k = int(np.searchsorted(tails, value, side="left"))
        if k == len(tails):
            tails.append(value)
            tail_index.append(i)
        else:
            tails[k] = value
            tail_index[k] = i
        parent[i] = tail_index[k - 1] if k > 0 else -1
    out = []
    i = tail_index[-1] if tail_index else -1
    while i >= 0:
        out.append(i)
        i = parent[i]
    return np.asarray(out[::-1], int)


def anchors(score_notes: np.ndarray, performance_notes: np.ndarray,
            matching: Matching) -> tuple[np.ndarray, np.ndarray]:
    """Strictly increasing (score onset, performance onset) pairs from the matched notes."""
    if matching.matches == 0:
        return np.zeros(0), np.zeros(0)
    s = np.round(score_notes["start_s"][matching.score_index], 4)
    p = performance_notes["start_s"][matching.performance_index]
    times, inverse = np.unique(s, return_inverse=True)
    medians = np.array([np.median(p[inverse == k]) for k in range(len(times))])
    keep = longest_increasing(medians)
    return times[keep], medians[keep]


def rematch(score_notes: np.ndarray, performance_notes: np.ndarray, matching: Matching, map_score: np.ndarray,
            map_performance: np.ndarray, window: float) -> Matching:
    """A second chance for the notes left unpaired (rolled chords, ornaments, rubato): same pitch within the wider
    ``window`` of the mapped time, and played between the mapped times of the previous and the next score
    onset; closest first."""
    free_s = np.setdiff1d(np.arange(len(score_notes)), matching.score_index)
    free_p = np.setdiff1d(np.arange(len(performance_notes)), matching.performance_index)
    if not len(free_s) or not len(free_p):
        return matching
    onsets = np.unique(score_notes["start_s"])
    k = np.searchsorted(onsets, score_notes["start_s"][free_s])
    previous = extrapolated(onsets[np.maximum(k - 1, 0)], map_score, map_performance)
    following = extrapolated(onsets[np.minimum(k + 1, len(onsets) - 1)], map_score, map_performance)
    predicted = extrapolated(score_notes["start_s"][free_s], map_score, map_performance)
    previous = np.where(k > 0, previous, -np.inf)
    following = np.where(k < len(onsets) - 1, following, np.inf)
    times, pitches = performance_notes["start_s"][free_p], performance_notes["pitch"][free_p]
    candidates = []
    for row, s in enumerate(free_s):
        near = np.flatnonzero((pitches == score_notes["pitch"][s]) & (np.abs(times - predicted[row]) <= window)
                              & (times > previous[row]) & (times < following[row]))
        candidates += [(abs(times[j] - predicted[row]), s, free_p[j]) for j in near]
    used_s, used_p, pairs = set(), set(), []
    for _, s, p in sorted(candidates):
        if s not in used_s and p not in used_p:
            used_s.add(s)
            used_p.add(p)
            pairs.append((s, p))
    if not pairs:
        return matching
    score_index = np.concatenate([matching.score_index, [s for s, _ in pairs]]).astype(int)
    perf_index = np.concatenate([matching.performance_index, [p for _, p in pairs]]).astype(int)
    order = np.argsort(score_index)
    return Matching(score_index[order], perf_index[order], matching.deletions - len(pairs),
                    matching.insertions - len(pairs))


def refine(score_notes: np.ndarray, performance_notes: np.ndarray, map_score: np.ndarray,
           map_performance: np.ndarray,
           windows: tuple[float, ...] = (0.35, 0.12),
           second_chance: float = 1.0) -> tuple[np.ndarray, np.ndarray, Matching]:
    """Match with successively narrower windows around the current map, then give the unpaired notes a
    second chance within ``second_chance`` seconds (:func:`rematch`); returns the final map and matching."""
    matching = Matching(np.zeros(0, int), np.zeros(0, int), len(score_notes), len(performance_notes))
    for window in windows:
        matching = match_notes(score_notes, performance_notes, map_score, map_performance, window)
        s, p = anchors(score_notes, performance_notes, matching)
        if len(s) >= 2:
            map_score, map_performance = s, p
    if second_chance > 0:
        matching = rematch(score_notes, performance_notes, matching, map_score, map_performance, second_chance)
    return map_score, map_performance, matching
