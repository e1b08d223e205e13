"""Note-level matching of a performance to a score, guided by a coarse time map.

1. Order (:func:`chord_chain`): the score's chords and the performance's played chords are aligned in order,
   keeping the most notes of equal pitch (a longest common subsequence, weighted by shared pitches), within a
   band around the coarse map. Where the map cannot tell repetitions of the same chord apart, counting them
   can: matching one repetition off leaves a chord unmatched at each end of the passage.
2. Time (:func:`match_notes`): every score note is paired with at most one performance note of the same pitch
   whose onset lies within a window around the score note's mapped time (closest pairs first). Unpaired score
   notes are deletions, unpaired performance notes insertions (wrong notes count as one of each). The matched
   onsets, one median per score onset time, kept in strictly increasing order (longest increasing
   subsequence), form the refined map.
3. Second chance (:func:`rematch`) for the unpaired notes, then each pitch's pairs put in score order
   (:func:`in_order`: a key is struck in the order the score has its notes).
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
    onset; closest first. Grace notes, unmeasured, may lie anywhere between those two onsets (a slow
    arpeggiated grace chord can start seconds before its main note)."""
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
        reach = np.inf if score_notes["grace"][s] else window
        near = np.flatnonzero((pitches == score_notes["pitch"][s]) & (np.abs(times - predicted[row]) <= reach)
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
           second_chance: float = 1.0, band: float = 0.0) -> tuple[np.ndarray, np.ndarray, Matching]:
    """Align chords in order within ``band`` seconds of the map (:func:`chord_chain`; 0: not), match with
    successively narrower windows around the current map, then give the unpaired notes a second chance within
    ``second_chance`` seconds (:func:`rematch`) and put each pitch's pairs in score order (:func:`in_order`);
    returns the final map and matching."""
    if band > 0:
        s, p = chord_chain(score_notes, performance_notes, map_score, map_performance, band)
        if len(s) >= 2:
            map_score, map_performance = s, p
    matching = Matching(np.zeros(0, int), np.zeros(0, int), len(score_notes), len(performance_notes))
    for window in windows:
        matching = match_notes(score_notes, performance_notes, map_score, map_performance, window)
        s, p = anchors(score_notes, performance_notes, matching)
        if len(s) >= 2:
            map_score, map_performance = s, p
    if second_chance > 0:
        matching = rematch(score_notes, performance_notes, matching, map_score, map_performance, second_chance)
    return map_score, map_performance, in_order(score_notes, performance_notes, matching)


#: Half-width in seconds of the band around a coarse map in which :func:`chord_chain` pairs chords: the size of
#: the map's errors it can repair (Vienna 4x22: the same matching for 4 and 8 s; 2 s leaves repeated chords of
#: Chopin Op. 38 one repetition off). Seconds at the score's tempo or slower: where the map says the performance
#: is slower than the score (a ritardando, a fermata), the band widens with it (:func:`tempo_band`).
ORDER_BAND = 4.0
#: The map's local tempo for :func:`tempo_band` is its mean slope over this many score seconds around a chord.
TEMPO_SPAN = 4.0
#: Played notes starting within this many seconds of a chord's first note belong to it (chord spread, melody
#: lead and rolled-chord onsets are mostly a few tens of ms; a slower roll splits into several played chords,
#: which the order alignment leaves unmatched but for one).
CHORD_SPREAD = 0.05


def tempo_band(times: np.ndarray, map_score: np.ndarray, map_performance: np.ndarray, band: float) -> np.ndarray:
    """``band`` seconds at each score time, times the map's local slowing down (its mean slope over
    :data:`TEMPO_SPAN` score seconds, when above 1): a 2.5x final ritardando leaves the band 2.5x wider, so the
    map's errors there, in performance seconds, stay within reach."""
    half = TEMPO_SPAN / 2
    slope = (extrapolated(times + half, map_score, map_performance)
             - extrapolated(times - half, map_score, map_performance)) / TEMPO_SPAN
    return band * np.maximum(slope, 1.0)


def played_chords(performance_notes: np.ndarray, spread: float = CHORD_SPREAD) -> tuple[np.ndarray, np.ndarray]:
    """Group notes (sorted by onset) into chords: a note joins the current chord when it starts within
    ``spread`` s of the chord's first note and its pitch is not in the chord yet. Returns each note's chord
    index and each chord's start."""
    onsets, pitches = performance_notes["start_s"], performance_notes["pitch"]
    chord = np.zeros(len(onsets), int)
    starts, members = [], set()
    for k in range(len(onsets)):
        if not starts or onsets[k] - starts[-1] > spread or pitches[k] in members:
            starts.append(onsets[k])
            members = set()
        members.add(pitches[k])
        chord[k] = len(starts) - 1
    return chord, np.asarray(starts, float)


def chord_chain(score_notes: np.ndarray, performance_notes: np.ndarray, map_score: np.ndarray,
                map_performance: np.ndarray, band: float) -> tuple[np.ndarray, np.ndarray]:
    """(score onset, performance onset) anchors from an in-order alignment of score chords to played chords.

    Score chords are the distinct onsets of the non-grace notes; played chords come from :func:`played_chords`
    (``performance_notes`` sorted by onset). A score chord may pair with a played chord starting within
    ``band`` s of its mapped time (wider where the map slows down, :func:`tempo_band`); the chain of pairs,
    strictly increasing on both sides, maximises the number of shared pitches, and among equal counts the
    closeness to the map. Each pair gives an anchor (the chord's score time, the median onset of its shared
    notes), kept strictly increasing.
    """
    keep = np.flatnonzero(~score_notes["grace"])
    times, score_chord = np.unique(np.round(score_notes["start_s"][keep], 4), return_inverse=True)
    perf_chord, starts = played_chords(performance_notes)
    if len(times) < 2 or len(starts) < 2:
        return np.zeros(0), np.zeros(0)
    score_sets = np.zeros((len(times), 128), np.int32)
    score_sets[score_chord, score_notes["pitch"][keep]] = 1
    perf_sets = np.zeros((len(starts), 128), np.int32)
    perf_sets[perf_chord, performance_notes["pitch"]] = 1
    predicted = extrapolated(times, map_score, map_performance)
    widths = tempo_band(times, map_score, map_performance, band)
    lo = np.searchsorted(starts, predicted - widths)
    hi = np.searchsorted(starts, predicted + widths, side="right")
    tie = 1.0 / (2.0 * widths.max() * (len(score_notes) + 1))  # all distances together weigh less than one pitch
    cells_i, cells_j, cells_w = [], [], []
    for i in np.flatnonzero(hi > lo):
        shared = perf_sets[lo[i]:hi[i]] @ score_sets[i]
        j = np.flatnonzero(shared)
        cells_i.append(np.full(len(j), i))
        cells_j.append(j + lo[i])
        cells_w.append(shared[j] * (1.0 - tie * np.abs(starts[j + lo[i]] - predicted[i])))
    if not cells_i:
        return np.zeros(0), np.zeros(0)
    ci, cj, cw = np.concatenate(cells_i), np.concatenate(cells_j), np.concatenate(cells_w)
    chain = heaviest_chain(ci, cj, cw, len(starts))
    s_out, p_out = [], []
    for c in chain:
        notes = (perf_chord == cj[c]) & (score_sets[ci[c]][performance_notes["pitch"]] > 0)
        s_out.append(times[ci[c]])
        p_out.append(np.median(performance_notes["start_s"][notes]))
    s_out, p_out = np.asarray(s_out), np.asarray(p_out)
    ordered = longest_increasing(p_out)
    return s_out[ordered], p_out[ordered]


def heaviest_chain(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n_cols: int) -> list[int]:
    """Indices of the cells forming the heaviest chain strictly increasing in row and column (a Fenwick tree
    of prefix maxima over columns; rows in order, each row's cells from the right so they do not chain)."""
    best_value = np.zeros(n_cols + 1)
    best_cell = np.full(n_cols + 1, -1)
    total = np.zeros(len(rows))
    parent = np.full(len(rows), -1)
    for c in np.lexsort((-cols, rows)).tolist():
        value, arg, x = 0.0, -1, int(cols[c])
        while x > 0:  # best chain ending in a column < cols[c]
            if best_value[x] > value:
                value, arg = best_value[x], best_cell[x]
            x -= x & -x
        total[c], parent[c] = value + weights[c], arg
        x = int(cols[c]) + 1
        while x <= n_cols:
            if total[c] > best_value[x]:
                best_value[x], best_cell[x] = total[c], c
            x += x & -x
    chain, c = [], int(np.argmax(total))
    while c >= 0:
        chain.append(c)
        c = int(parent[c])
    return chain[::-1]


def in_order(score_notes: np.ndarray, performance_notes: np.ndarray, matching: Matching) -> Matching:
    """The same notes paired, but each pitch's pairs in score order: sorted by score time (a grace note before
    the main notes at its time) and performance onset alike."""
    if matching.matches == 0:
        return matching
    s, p = matching.score_index, matching.performance_index.copy()
    pitch = score_notes["pitch"][s]
    by_score = np.lexsort((s, ~score_notes["grace"][s], score_notes["start_s"][s], pitch))
    by_perf = np.lexsort((p, performance_notes["start_s"][p], pitch))
    p[by_score] = p[by_perf]
    return Matching(s, p, matching.deletions, matching.insertions)
