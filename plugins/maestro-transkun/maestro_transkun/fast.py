"""The fast inference path of transkun: the same model, windows and decoding as ``TransKun.transcribe``, with the
cycles it wastes on CPU taken out.

- Attention: transkun hands 5-D tensors to ``scaled_dot_product_attention``, which sends them to PyTorch's
  reference ("math") kernel; here they are flattened to 4-D, which takes the fused flash kernel (the same
  softmax attention, summed in another order).
- Interval scores: batched matrix products (10 keys at a time) written straight into the layout the decoder
  reads, scaled by the interval length in place, instead of transkun's einsum, full diagonal matrix and copies
  (bit-identical scores).
- Decoding: the semi-CRF's Viterbi pass and back-tracking compiled with numba (cached on disk), instead of a
  TorchScript loop that copies the whole score matrix first.
- Audio: streamed from the file (:class:`AudioStream`, the samples ``load_audio`` gives) and the windows cut from
  it, instead of a padded copy of the whole recording; the last window when it holds only the padding after the
  end is skipped (the packaged model decodes no interval in digital silence: tests/test_transkun_fast.py).

The window loop and the merging of notes across windows follow ``TransKun.transcribe`` (transkun 2.0.1, MIT
licence, Yujia Yan) line by line, so both paths give the same notes up to float rounding.
"""

from __future__ import annotations

import math
import types
from collections import defaultdict
from typing import Callable

import numpy as np

_viterbi = None


def _attention(self, query, key=None, value=None):
    """``MultiHeadAttentionKernel.forward`` (no kernel approximation) with 4-D tensors for the fused kernel."""
    import torch.nn.functional as F

    key = query if key is None else key
    value = key if value is None else value
    heads, size = self.num_heads, self.head_dim
    lead = query.shape[:-1]

    def split(x, weight):
        x = x @ weight
        return x.reshape(-1, x.shape[-2], heads, size).transpose(1, 2)  # [batch, heads, length, size]

    fetched = F.scaled_dot_product_attention(split(query, self.q_proj_weight), split(key, self.k_proj_weight),
                                             split(value, self.v_proj_weight))
    return self.out_proj(fetched.transpose(1, 2).reshape(*lead, heads * size))


class IntervalScores:
    """A window's semi-CRF: ``by_begin[key, begin, end]`` (only ``end >= begin`` is read), zero noise scores.

    ``score`` and ``noiseScore`` are the ``[end, begin, key]`` and ``[frame, key]`` views of
    ``transkun.CRF.NeuralSemiCRFInterval``, for code that reads those."""

    def __init__(self, by_begin):
        self.by_begin = by_begin

    @property
    def score(self):
        return self.by_begin.permute(2, 1, 0)

    @property
    def noiseScore(self):
        return self.by_begin.new_zeros(self.by_begin.shape[1] - 1, self.by_begin.shape[0])

    def decode(self, forcedStartPos=None, forward=False):
        """The best intervals of each key, as ``viterbiBackward`` of transkun's CRF gives them."""
        if forward:
            raise NotImplementedError("only the backward Viterbi pass (what transcribe uses)")
        scores = self.by_begin.cpu().numpy()
        keys = scores.shape[0]
        start = np.asarray(forcedStartPos if forcedStartPos is not None else [0] * keys, dtype=np.int64)
        begins, ends, counts = viterbi_kernel()(scores, start)
        paths, at = [], 0
        for count in counts.tolist():
            paths.append(list(zip(begins[at:at + count].tolist(), ends[at:at + count].tolist())))
            at += count
        return paths


def interval_scores(scorer, ctx, keys_at_once: int = 10) -> IntervalScores:
    """``ScaledInnerProductIntervalScorer.forward`` for ``ctx`` ``[1, keys, frames, size]``, keys as the batch,
    ``keys_at_once`` keys at a time (the projections of all 90 keys would hold 190 MB more at once)."""
    import torch

    size = scorer.size * scorer.expansionFactor
    n_keys, frames = ctx.shape[1], ctx.shape[2]
    scores = torch.empty(n_keys, frames, frames, dtype=ctx.dtype, device=ctx.device)  # [key, begin, end]
    index = torch.arange(frames, device=ctx.device)
    length = (index.unsqueeze(0) - index.unsqueeze(1)).abs()
    for lo in range(0, n_keys, keys_at_once):
        part = scores[lo:lo + keys_at_once]
        q, k, diag = scorer.map(ctx[0, lo:lo + keys_at_once]).split([size, size, 1], dim=-1)
        torch.bmm(k, (q / math.sqrt(size)).transpose(1, 2), out=part)
        part.mul_(length)
        part.diagonal(dim1=1, dim2=2).add_(diag[..., 0])
    return IntervalScores(scores)


def process_frames(model, frames):
    """``TransKun.processFramesBatch`` for one window ``[1, 1, frames, window]``: its scores and context."""
    import torch

    if frames.shape[0] != 1:
        raise ValueError("the fast path processes one window at a time")
    mean = torch.mean(frames, dim=[1, 2, 3], keepdim=True)
    std = torch.std(frames, dim=[1, 2, 3], keepdim=True)
    features = model.framewiseFeatureExtractor((frames - mean) / (std + 1e-8)).contiguous()
    features = features.view(1, *features.shape[-3:])
    ctx = model.backbone(features, outputIndices=torch.tensor(model.targetMIDIPitch, device=features.device))
    return interval_scores(model.scorer, ctx), ctx


def accelerate(model):
    """Give ``model`` (a loaded ``TransKun``) the fast attention and per-window processing; returns it."""
    from transkun.LayersTransformer import MultiHeadAttentionKernel

    if not model.useInnerProductScorer:
        raise ValueError("the fast path needs transkun's inner-product interval scorer")
    for module in model.modules():
        if isinstance(module, MultiHeadAttentionKernel):
            if module.kernel is not None:
                raise ValueError("the fast path needs exact (not kernel-approximated) attention")
            module.forward = types.MethodType(_attention, module)
    model.processFramesBatch = types.MethodType(process_frames, model)
    return model


def viterbi_kernel():
    """The compiled Viterbi pass over ``scores[key, begin, end]`` from each key's forced start frame: the chosen
    intervals as flat ``begins``, ``ends`` and a count per key (compiled once, cached on disk by numba)."""
    global _viterbi
    if _viterbi is not None:
        return _viterbi
    from maestro_cli.align.dtw import numba_cache_dir

    numba_cache_dir()
    import numba

    @numba.njit(cache=True, nogil=True)
    def viterbi_backward(scores, start):
        keys, frames = scores.shape[0], scores.shape[1]
        best = np.zeros(frames, np.float32)
        choice = np.zeros((keys, frames), np.int64)
        begins = np.zeros(keys * frames, np.int64)
        ends = np.zeros(keys * frames, np.int64)
        counts = np.zeros(keys, np.int64)
        found = 0
        for key in range(keys):
            last = scores[key, frames - 1, frames - 1]
            best[frames - 1] = last if last > 0 else np.float32(0.0) * last
            for j in range(frames - 2, -1, -1):  # the best from frame j on: skip frame j, or an interval [j, e]
                value = best[j + 1] + np.float32(0.0)
                pick = -1
                row = scores[key, j]
                for e in range(j + 1, frames):
                    candidate = best[e] + row[e]
                    if candidate > value:
                        value = candidate
                        pick = e
                single = row[j]
                best[j] = value + (single if single > 0 else np.float32(0.0) * single)
                choice[key, j] = pick
            j = start[key]
            first = found
            while j < frames - 1:
                if scores[key, j, j] > 0:
                    begins[found] = j
                    ends[found] = j
                    found += 1
                if choice[key, j] < 0:
                    j += 1
                else:
                    begins[found] = j
                    ends[found] = choice[key, j]
                    found += 1
                    j = choice[key, j]
            if scores[key, frames - 1, frames - 1] > 0:
                begins[found] = frames - 1
                ends[found] = frames - 1
                found += 1
            counts[key] = found - first
        return begins[:found], ends[:found], counts

    _viterbi = viterbi_backward
    return _viterbi


class AudioStream:
    """A mono recording read forward from :func:`maestro_cli.audio.io.audio_blocks`, holding only the samples
    still to be read (a window and a block), with the checks :func:`~maestro_cli.audio.io.load_audio` makes."""

    def __init__(self, path, sample_rate: int):
        from maestro_cli.audio.io import audio_blocks, probe_audio, warn_if_truncated

        info = probe_audio(path)
        warn_if_truncated(path, info)  # as load_audio warns
        self.path = path
        self._blocks = audio_blocks(path, sample_rate, info=info)
        self._buffer = np.zeros(0, np.float32)
        self._start = 0  # recording index of _buffer[0]
        self.length: int | None = None  # known once the file is read to its end
        self.peak = 0.0

    def read(self, lo: int, hi: int) -> np.ndarray:
        """Samples ``lo`` to ``hi`` (fewer past the end); ``lo`` never decreases between calls."""
        from maestro_cli.errors import MaestroError

        parts = [self._buffer[max(lo - self._start, 0):]]
        self._start = max(lo, self._start)
        have = self._start + len(parts[0])
        while self.length is None and have < hi:
            block = next(self._blocks, None)
            if block is None:
                self.length = have
                if not have:
                    raise MaestroError("audio file holds no samples (zero length)", self.path)
                break
            block = block[:, 0]
            if len(block):
                if not np.isfinite(np.sum(block, dtype=np.float64)):
                    raise MaestroError("audio holds NaN or infinite samples", self.path)
                self.peak = max(self.peak, float(np.max(np.abs(block))))
            parts.append(block)
            have += len(block)
        self._buffer = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return self._buffer[lo - self._start:hi - self._start]


class _InMemory:
    """An array as an :class:`AudioStream`."""

    def __init__(self, audio: np.ndarray):
        self.audio, self.length = audio, len(audio)

    def read(self, lo: int, hi: int) -> np.ndarray:
        return self.audio[lo:hi]


def transcribe(model, audio, hop_seconds: float, segment_seconds: float, on_window: Callable | None = None) -> list:
    """``TransKun.transcribe(x, stepInSecond=hop_seconds, segmentSizeInSecond=segment_seconds)`` of mono
    ``audio`` (float32 at the model's rate: an array or an :class:`AudioStream`) with windows cut from the audio
    itself; ``model`` must be :func:`accelerate`-d. ``on_window(crf, ctx)`` sees each window's scores and context.
    Returns transkun's notes (``pitch`` < 0: pedals)."""
    import torch
    from transkun.Data import resolveOverlapping
    from transkun.Util import makeFrame

    source = _InMemory(audio) if isinstance(audio, np.ndarray) else audio
    fs, hop, device = model.fs, model.hopSize, model.getDevice()
    pad_time = segment_seconds - hop_seconds
    pad = math.ceil(pad_time * fs)
    step = math.ceil(hop_seconds * fs / hop) * hop
    segment = math.ceil(segment_seconds * fs)
    last_frame = round(segment / hop)
    start_pos = [math.floor(pad_time * fs / hop)] * len(model.targetMIDIPitch)
    by_type: dict = defaultdict(list)
    process = model.processFramesBatch
    if on_window is not None:
        def process(frames):
            crf, ctx = model.processFramesBatch(frames)
            on_window(crf, ctx)
            return crf, ctx
    i = 0
    while True:  # i over range(0, len(audio) + 2 * pad, step), as the length becomes known
        lo = max(i - pad, 0)
        samples = source.read(lo, i + segment - pad)
        if source.length is not None and i >= source.length + 2 * pad:
            break
        i, begin_sample = i + step, i  # the next window's start; this one's
        if not len(samples) and on_window is None:  # pure padding past the end: no note in silence
            continue
        window = np.zeros(segment, np.float32)  # x[:, i:i + segment] of the padded recording, zeros past its end
        window[lo - (begin_sample - pad):lo - (begin_sample - pad) + len(samples)] = samples
        frames = makeFrame(torch.from_numpy(window).unsqueeze(0).to(device), hop, model.windowSize)
        events, last_p = type(model).transcribeFrames(_Bound(model, process), frames.unsqueeze(0),
                                                       forcedStartPos=start_pos, velocityCriteron="hamming",
                                                       onsetBound=None, lastFrameIdx=last_frame)
        events = events[0]
        start_pos = [max(k - int(step / hop), 0) for k in last_p]
        begin = begin_sample / fs - pad_time
        for e in events:
            e.start = max(e.start + begin, 0)
            e.end = max(e.end + begin, e.start)
        for e in events:  # TransKun.transcribe, mergeIncompleteEvent=True
            if by_type[e.pitch]:
                last_e = by_type[e.pitch][-1]
                if e.start < last_e.end:
                    if e.hasOnset:
                        by_type[e.pitch][-1] = e
                    else:
                        last_e.hasOffset = e.hasOffset
                        last_e.end = max(e.end, last_e.end)
                    continue
            if e.hasOnset:
                by_type[e.pitch].append(e)
    for events in by_type.values():
        if events:
            events[-1].hasOffset = True
    return resolveOverlapping([e for events in by_type.values() for e in events if e.hasOffset])


class _Bound:
    """``model`` with its ``processFramesBatch`` replaced, for ``TransKun.transcribeFrames``."""

    def __init__(self, model, process):
        self._model, self.processFramesBatch = model, process

    def __getattr__(self, name):
        return getattr(self._model, name)
