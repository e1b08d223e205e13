"""Multi-resolution DTW on chroma + onset features, in memory linear in the length of the pieces.

1. Coarse level: features smoothed and downsampled (2 Hz for 50 Hz input), full DTW. Its end is open: the
   path may stop before the performance does (trailing applause or noise): the end with the lowest total cost,
   each performance frame left out costing :data:`SKIP_COST` (a per-step mean cost instead cut slow
   ritardandos short); the start is found the same way on the reversed sequences.
2. Finer levels: the path of the level above, projected and widened by a margin, is the band in which DTW runs
   again. The local cost at every level is ``alpha * (1 - chroma cosine) + (1 - alpha) * onset distance``
   (onsets as density per pitch class at the coarse levels, DLNCO at full resolution).

The DTW kernel is compiled with numba (lazily, cached in ``$NUMBA_CACHE_DIR``, default
``~/.cache/maestro/numba``). Step sizes (1,0), (0,1), (1,1) with equal weights; band radius, weights, skip
cost and ``alpha`` were chosen by measurement on ASAP renders (see docs/align.md).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maestro_cli.align.features import Features, _unit_rows

#: Keep the coarse full matrix under this many cells (about 50 MB of working memory).
MAX_COARSE_CELLS = 4_000_000
RADIUS = 4  # band half-width at each finer level, in frames of the level above
WEIGHTS = (1.0, 1.0, 1.0)  # horizontal (performance advances), vertical (score advances), diagonal
#: Cost of each performance frame an open end leaves out (a frame on the path costs 0..1 at equal weights).
SKIP_COST = 0.25
_kernel = None


def numba_cache_dir() -> Path:
    """Make numba cache compiled code in a persistent folder (``$NUMBA_CACHE_DIR`` wins)."""
    folder = Path(os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "maestro" / "numba")))
    folder.mkdir(parents=True, exist_ok=True)
    if "numba" in sys.modules:  # numba read its config already: update it
        sys.modules["numba"].config.CACHE_DIR = str(folder)
    return folder


@dataclass
class DTWResult:
    """Path (score frame, performance frame) at full resolution, and its mean local cost."""

    score_frames: np.ndarray
    performance_frames: np.ndarray
    cost: float


def _compile():
    global _kernel
    if _kernel is not None:
        return _kernel
    numba_cache_dir()
    import numba

    @numba.njit(cache=True, nogil=True)
    def band_dtw(xc, yc, xo, yo, alpha, lo, hi, wh, wv, wd, begin_limit, end_from, skip):
        n = xc.shape[0]
        use_onset = xo.shape[0] == n and alpha < 1.0
        offsets = np.zeros(n + 1, np.int64)
        for i in range(n):
            offsets[i + 1] = offsets[i] + hi[i] - lo[i]
        total = offsets[n]
        acc = np.full(total, np.inf)
        steps = np.zeros(total, np.int32)
        move = np.zeros(total, np.int8)
        for i in range(n):
            base = offsets[i]
            for j in range(lo[i], hi[i]):
                dot = 0.0
                for d in range(xc.shape[1]):
                    dot += xc[i, d] * yc[j, d]
                c = 1.0 - dot
                if use_onset:
                    dist = 0.0
                    for d in range(xo.shape[1]):
                        diff = xo[i, d] - yo[j, d]
                        dist += diff * diff
                    c = alpha * c + (1.0 - alpha) * np.sqrt(dist)
                k = base + j - lo[i]
                best = np.inf
                how = -1
                length = 0
                if i == 0 and j < begin_limit:  # open start: each performance frame left out costs ``skip``
                    best = skip * (j - lo[0]) + wd * c
                    how = 0
                    length = 1
                if j > lo[i] and acc[k - 1] + wh * c < best:
                    best = acc[k - 1] + wh * c
                    how = 1
                    length = steps[k - 1] + 1
                if i > 0:
                    plo = lo[i - 1]
                    phi = hi[i - 1]
                    pbase = offsets[i - 1]
                    if plo <= j < phi and acc[pbase + j - plo] + wv * c < best:
                        best = acc[pbase + j - plo] + wv * c
                        how = 2
                        length = steps[pbase + j - plo] + 1
                    if plo <= j - 1 < phi and acc[pbase + j - 1 - plo] + wd * c < best:
                        best = acc[pbase + j - 1 - plo] + wd * c
                        how = 3
                        length = steps[pbase + j - 1 - plo] + 1
                acc[k] = best
                steps[k] = length
                move[k] = how
        # open end: the lowest total cost among the allowed end columns of the last row, each performance frame
        # left after the end costing ``skip``
        i = n - 1
        best_j = -1
        best_score = np.inf
        for j in range(max(end_from, lo[i]), hi[i]):
            k = offsets[i] + j - lo[i]
            if steps[k] > 0 and acc[k] + skip * (hi[i] - 1 - j) < best_score:
                best_score = acc[k] + skip * (hi[i] - 1 - j)
                best_j = j
        if best_j < 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        k = offsets[i] + best_j - lo[i]
        count = steps[k]
        path_i = np.empty(count, np.int64)
        path_j = np.empty(count, np.int64)
        j = best_j
        for step in range(count - 1, -1, -1):
            path_i[step] = i
            path_j[step] = j
            how = move[offsets[i] + j - lo[i]]
            if how == 1:
                j -= 1
            elif how == 2:
                i -= 1
            elif how == 3:
                i -= 1
                j -= 1
        return path_i, path_j

    _kernel = band_dtw
    return _kernel


def _downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Moving average over ``2*factor+1`` frames, every ``factor``-th frame, unit rows."""
    if factor == 1:
        return x
    window = 2 * factor + 1
    padded = np.pad(x, ((factor, factor), (0, 0)), mode="edge")
    csum = np.cumsum(np.vstack([np.zeros((1, x.shape[1])), padded]), axis=0)
    smooth = (csum[window:] - csum[:-window]) / window
    return _unit_rows(smooth[::factor], threshold=1e-3, fill=1.0 / np.sqrt(x.shape[1]))


def _downsample_onsets(x: np.ndarray, factor: int) -> np.ndarray:
    """Onset density per pitch class at a coarser rate: moving sum, every ``factor``-th frame, unit rows."""
    if factor == 1:
        return x
    window = 2 * factor + 1
    padded = np.pad(x, ((factor, factor), (0, 0)))
    csum = np.cumsum(np.vstack([np.zeros((1, x.shape[1])), padded]), axis=0)
    return _unit_rows((csum[window:] - csum[:-window])[::factor], threshold=1e-3)


def _run(xc, yc, xo, yo, alpha, lo, hi, begin_limit, end_from):
    kernel = _compile()
    wh, wv, wd = WEIGHTS
    empty = np.zeros((0, 12))
    return kernel(np.ascontiguousarray(xc), np.ascontiguousarray(yc),
                  np.ascontiguousarray(xo) if xo is not None else empty,
                  np.ascontiguousarray(yo) if yo is not None else empty,
                  float(alpha), lo.astype(np.int64), hi.astype(np.int64), wh, wv, wd, int(begin_limit), int(end_from),
                  float(SKIP_COST))


def _band(path_i, path_j, ratio, n, m, radius):
    """Per-row column range at the finer level around a coarse path (monotonic, covering the projection)."""
    lo = np.full(n, m, np.int64)
    hi = np.zeros(n, np.int64)
    for offset in range(ratio):
        rows = np.minimum(path_i * ratio + offset, n - 1)
        np.minimum.at(lo, rows, path_j * ratio - radius)
        np.maximum.at(hi, rows, path_j * ratio + ratio + radius)
    lo = np.clip(np.minimum.accumulate(lo[::-1])[::-1], 0, m - 1)
    hi = np.clip(np.maximum.accumulate(hi), 1, m)
    hi = np.maximum(hi, lo + 1)
    return lo, hi


def coarse_factor(n: int, m: int, rate: int) -> int:
    """Downsampling of the coarse level: 2 Hz, halved until the full matrix fits :data:`MAX_COARSE_CELLS`."""
    factor = max(1, rate // 2)
    while (n / factor) * (m / factor) > MAX_COARSE_CELLS:
        factor *= 2
    return factor


def align_features(score: Features, performance: Features, alpha: float = 0.5, open_ends: bool = True,
                   max_open_fraction: float = 0.25) -> DTWResult:
    """Multi-resolution DTW between two feature sequences; the path of the finest level.

    With ``open_ends`` the path may skip up to ``max_open_fraction`` of the performance at each end.
    """
    n, m = len(score), len(performance)
    factor = coarse_factor(n, m, score.rate)
    levels = [factor]
    while levels[-1] > 25:
        levels.append(levels[-1] // 2)
    levels += [level for level in (5, 1) if level < levels[-1]]
    # coarse level: full DTW, open end, then the start from the reversed problem
    xc, yc = _downsample(score.chroma, factor), _downsample(performance.chroma, factor)
    xo, yo = _downsample_onsets(score.onset, factor), _downsample_onsets(performance.onset, factor)
    cn, cm = len(xc), len(yc)
    slack = int(max_open_fraction * cm) if open_ends else 0
    full_lo, full_hi = np.zeros(cn, np.int64), np.full(cn, cm, np.int64)
    path_i, path_j = _run(xc, yc, xo, yo, alpha, full_lo, full_hi, 1, cm - 1 - slack)
    if open_ends and slack:
        end = int(path_j[-1])
        _, rev_j = _run(xc[::-1], yc[end::-1], xo[::-1], yo[end::-1], alpha, full_lo,
                        np.full(cn, end + 1, np.int64), 1, end - slack)
        begin = end - int(rev_j[-1])
        lo, hi = np.zeros(cn, np.int64), np.full(cn, end + 1, np.int64)
        path_i, path_j = _run(xc, yc, xo, yo, alpha, np.maximum(lo, begin), hi, begin + 1, end)
    # finer levels inside a band around the projected path
    for previous, current in zip(levels, levels[1:]):
        ratio = previous // current
        xc, yc = _downsample(score.chroma, current), _downsample(performance.chroma, current)
        lo, hi = _band(path_i, path_j, ratio, len(xc), len(yc), radius=RADIUS * ratio)
        # open ends inside the band too (a closed end would stretch the last score frame to the band's edge)
        begin_limit, end_from = (hi[0], lo[-1]) if open_ends else (lo[0] + 1, hi[-1] - 1)
        xo, yo = _downsample_onsets(score.onset, current), _downsample_onsets(performance.onset, current)
        path_i, path_j = _run(xc, yc, xo, yo, alpha, lo, hi, begin_limit, end_from)
    cost = float(np.mean(1.0 - np.einsum("ij,ij->i", score.chroma[path_i], performance.chroma[path_j])))
    return DTWResult(path_i, path_j, cost)


def confidence(score: Features, performance: Features, result: DTWResult, samples: int = 20000) -> float:
    """1 - (chroma cost on the path) / (cost between random frame pairs), clipped to 0..1.

    About 0.6-0.8 for a performance of the score, markedly lower for unrelated music.
    """
    rng = np.random.default_rng(0)
    i = rng.integers(0, len(score), samples)
    j = rng.integers(0, len(performance), samples)
    baseline = float(np.mean(1.0 - np.einsum("ij,ij->i", score.chroma[i], performance.chroma[j])))
    if baseline <= 1e-9:
        return 0.0
    return float(np.clip(1.0 - result.cost / baseline, 0.0, 1.0))


def strict_pairs(score_frames: np.ndarray, performance_frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn a monotonic path into strictly increasing (score, performance) positions.

    One point per score frame: the mean performance frame (the first one on the last row, the last one on the
    first row, so waiting at either end does not drag the map); runs of equal performance positions keep
    their middle point.
    """
    rows, first = np.unique(score_frames, return_index=True)
    sums = np.add.reduceat(performance_frames.astype(np.float64), first)
    counts = np.diff(np.append(first, len(performance_frames)))
    perf = sums / counts
    perf[0] = performance_frames[first[0] + counts[0] - 1]
    perf[-1] = performance_frames[first[-1]]
    keep = np.ones(len(rows), bool)
    run_start = 0
    for k in range(1, len(rows) + 1):
        if k == len(rows) or perf[k] > perf[run_start]:
            if k - run_start > 1:
                keep[run_start:k] = False
                keep[(run_start + k - 1) // 2] = True
            run_start = k
    return rows[keep].astype(np.float64), perf[keep]
