"""maestro plugin: transcriber ``transkun`` on Transkun v2 (Yan & Duan), the packaged 2.0 model of ``transkun`` 2.0.1.

The model is built from its Python classes (``transkun.ModelTransformer.TransKun`` with the packaged ``2.0.conf``)
and loaded from ``transkun/pretrained/2.0.pt`` with ``weights_only=True``. Audio is read with maestro's own loader
(any format) and resampled to 44.1 kHz. Transkun transcribes in 16 s windows (8 s hop), one window at a time, so
the model's memory does not grow with the recording; by default through :mod:`maestro_transkun.fast` (the same
notes, less CPU), with option ``path=reference`` through transkun's own ``TransKun.transcribe``. Notes keep their
key releases; the sustain (CC64) and soft (CC67) pedals are written as control changes.

torchaudio (no build exists for the pinned torch) is only used by transkun to compute its mel filterbank when the
model is constructed; :func:`_torchaudio_shim` provides exactly that function during construction, and the
checkpoint's stored filterbank (``framewiseFeatureExtractor.freq2mels``) then overwrites it.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.hookspecs import hookimpl

SAMPLE_RATE = 44100
#: transkun's pedal "pitches" and the MIDI controllers they become.
PEDALS = {-64: 64, -67: 67}
#: Key onsets less probable than this (the semi-CRF's marginal, summed over 3 frames) are no candidates by default
#: (option ``candidate_floor``). Lower ones do not pay with scores that may be wrong: on the MAPS benchmark a left-out
#: score note with a candidate between 0.002 and 0.05 was as often a wrong score note as a played one (17 to 16;
#: docs/transcribe.md).
CANDIDATE_FLOOR = 0.05
_INSTALL = "pip install --no-deps transkun==2.0.1"
#: Inference paths: ``fast`` (:mod:`maestro_transkun.fast`, the default) and ``reference`` (transkun's own
#: ``TransKun.transcribe``, as shipped before; the fast path is measured against it).
PATHS = ("fast", "reference")


@dataclass
class TranskunOptions:
    """Checkpoint, windowing, device and threads of the transkun transcriber."""

    checkpoint: str | None = None
    conf: str | None = None
    segment_seconds: float = 16.0
    hop_seconds: float = 8.0
    device: str = "cpu"
    threads: int = 0
    pedals: bool = True
    candidate_floor: float = CANDIDATE_FLOOR  # transcribe_candidates: the lowest onset probability
    path: str = "fast"  # fast | reference (transkun's own inference code)

    def __post_init__(self) -> None:
        if self.path not in PATHS:
            raise UsageError(f"transkun option path must be one of {', '.join(PATHS)} (got '{self.path}')")
        if not 2.0 <= self.segment_seconds <= 60.0:
            raise UsageError("transkun option segment_seconds must be between 2 and 60")
        if not 0.0 < self.hop_seconds <= self.segment_seconds:
            raise UsageError("transkun option hop_seconds must be > 0 and at most segment_seconds")
        if self.threads < 0:
            raise UsageError("transkun option threads must be >= 0 (0: torch's default)")
        if not 0.0 < self.candidate_floor <= 1.0:
            raise UsageError("transkun option candidate_floor must be > 0 and at most 1")


def melscale_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int,
                    norm: str | None = None, mel_scale: str = "htk"):
    """torchaudio's triangular mel filterbank ``(n_freqs, n_mels)`` (HTK mel scale, no normalisation)."""
    import torch

    if norm is not None or mel_scale != "htk":
        raise NotImplementedError("only the HTK mel scale without normalisation (what transkun uses)")
    freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    mel_lo, mel_hi = (2595.0 * math.log10(1.0 + f / 700.0) for f in (f_min, f_max))
    f_pts = 700.0 * (10 ** (torch.linspace(mel_lo, mel_hi, n_mels + 2) / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - freqs.unsqueeze(1)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.min(down, up), min=0.0)


@contextlib.contextmanager
def _torchaudio_shim() -> Iterator[None]:
    """Let ``import torchaudio`` return a module with only ``functional.melscale_fbanks`` while inside."""
    shim = types.ModuleType("torchaudio")
    shim.functional = types.SimpleNamespace(melscale_fbanks=melscale_fbanks)
    previous = sys.modules.get("torchaudio")
    sys.modules["torchaudio"] = shim
    try:
        yield
    finally:
        if previous is None:
            sys.modules.pop("torchaudio", None)
        else:
            sys.modules["torchaudio"] = previous


def packaged_files() -> tuple[Path, Path]:
    """Paths of the weights and configuration inside the installed ``transkun`` wheel."""
    import importlib.util

    spec = importlib.util.find_spec("transkun")
    if spec is None or not spec.submodule_search_locations:
        raise MaestroError(f"the transkun package is not installed ({_INSTALL})")
    folder = Path(next(iter(spec.submodule_search_locations))) / "pretrained"
    return folder / "2.0.pt", folder / "2.0.conf"


def load_model(checkpoint: Path, conf: Path, device: str = "cpu"):
    """Build ``TransKun`` from ``conf`` and load ``checkpoint`` (weights only, every tensor must fit)."""
    import torch

    for path in (checkpoint, conf):
        if not path.is_file():
            raise MaestroError("no such file", path)
    try:
        config = json.loads(conf.read_text(encoding="utf-8"))["Model"]["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MaestroError(f"not a transkun model configuration ({type(exc).__name__}: {exc})", conf) from None
    try:
        saved = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
        state = saved.get("best_state_dict", saved.get("state_dict"))
        if state is None:
            raise KeyError("no 'state_dict' in the file")
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise MaestroError(f"not a readable transkun checkpoint ({type(exc).__name__}: {message})",
                           checkpoint) from None
    from transkun import ModelTransformer

    settings = ModelTransformer.Config()
    settings.__dict__.update(config)
    with _torchaudio_shim():
        model = ModelTransformer.TransKun(conf=settings)
    try:
        model.load_state_dict(state, strict=True)  # includes the stored mel filterbank
    except RuntimeError as exc:
        raise MaestroError(f"checkpoint does not fit the model of {conf.name} "
                           f"({str(exc).splitlines()[0]})", checkpoint) from None
    model.backbone.useGradientCheckpoint = False
    return model.eval().to(device)


class TranskunTranscriber:
    """Transcribes recordings with Transkun v2: notes with velocities, sustain and soft pedal."""

    def __init__(self, options: TranskunOptions):
        self.options = options
        self._model = None

    def model(self):
        """The model, built and loaded on first use."""
        if self._model is None:
            import torch

            if self.options.device.startswith("cuda") and not torch.cuda.is_available():
                raise UsageError("transkun option device=cuda: no CUDA device is available")
            if self.options.threads:
                torch.set_num_threads(self.options.threads)
            checkpoint, conf = (Path(path) if path else None for path in (self.options.checkpoint, self.options.conf))
            if checkpoint is None or conf is None:
                weights, packaged_conf = packaged_files()
                checkpoint, conf = checkpoint or weights, conf or packaged_conf
            model = load_model(checkpoint, conf, self.options.device)
            if self.options.path == "fast":
                from maestro_transkun import fast

                model = fast.accelerate(model)
            self._model = model
        return self._model

    def events(self, audio, candidates: list | None = None) -> tuple:
        """Notes (:data:`maestro_cli.symbolic.notes.NOTE_DTYPE`) and pedal spans ``(start_s, end_s, controller)`` of
        mono 44.1 kHz ``audio`` (an array; on the fast path also a :class:`maestro_transkun.fast.AudioStream`);
        with a ``candidates`` list, each window's :func:`window_candidates` are appended to it, placed in the
        recording."""
        import torch

        from maestro_cli.symbolic.notes import make_notes

        model = self.model()
        hop, segment = self.options.hop_seconds, self.options.segment_seconds
        step = math.ceil(hop * model.fs / model.hopSize) * model.hopSize

        def search(crf, ctx) -> None:  # see each window's semi-CRF as transkun's own decoding runs
            begin = len(candidates) * step / model.fs - (segment - hop)
            found = window_candidates(model, crf, ctx, self.options.candidate_floor)
            inside = (found[:, 1] >= (segment - hop) / 2) & (found[:, 1] < (segment + hop) / 2)  # tiles the audio
            candidates.append(found[inside] + [0.0, begin, begin, 0.0, 0.0])

        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.options.path == "fast":
                from maestro_transkun import fast

                found = fast.transcribe(model, audio, hop, segment, search if candidates is not None else None)
            else:
                found = self._reference(model, audio, search if candidates is not None else None)
        keys = [e for e in found if e.pitch > 0]
        notes = make_notes([e.pitch for e in keys], [e.start for e in keys], [e.end for e in keys],
                           [e.velocity for e in keys])
        pedals = [(e.start, e.end, PEDALS[e.pitch]) for e in found if e.pitch in PEDALS and e.end - e.start >= 1e-3]
        return notes, pedals

    def _reference(self, model, audio, on_window) -> list:
        """transkun's own ``TransKun.transcribe`` (option ``path=reference``), ``on_window(crf, ctx)`` per window."""
        import torch

        x = torch.from_numpy(audio).unsqueeze(-1).to(self.options.device)
        if on_window is not None:
            process = model.processFramesBatch

            def process_and_search(frames):
                crf, ctx = process(frames)
                on_window(crf, ctx)
                return crf, ctx

            model.processFramesBatch = process_and_search
        try:
            return model.transcribe(x, stepInSecond=self.options.hop_seconds,
                                    segmentSizeInSecond=self.options.segment_seconds)
        finally:
            model.__dict__.pop("processFramesBatch", None)

    def transcribe(self, audio: Path, out_midi: Path, *, notes_csv: Path | None = None) -> None:
        self._transcribe(audio, out_midi, notes_csv)

    def transcribe_candidates(self, audio: Path, out_midi: Path):
        """The transcription written to ``out_midi``; returned: the key onsets the semi-CRF gives a probability of
        at least the option ``candidate_floor``, with that probability
        (:class:`maestro_cli.protocols.CandidateTranscriber`), and the transcription's notes among them.
        """
        import numpy as np

        from maestro_cli.symbolic.notes import make_notes

        windows: list = []
        decided = self._transcribe(audio, out_midi, None, windows)
        rows = np.concatenate(windows) if windows else np.zeros((0, 5))
        rows = rows[rows[:, 2] > np.maximum(rows[:, 1], 0.0)]
        found = make_notes(rows[:, 0], np.maximum(rows[:, 1], 0.0), rows[:, 2], rows[:, 3])
        missing = [not np.any((found["pitch"] == note["pitch"]) & (np.abs(found["start_s"] - note["start_s"]) <= 0.05))
                   for note in decided]  # rare (a window's edge): a decided note gets the floor
        notes = np.concatenate([found, decided[np.asarray(missing, bool)]])
        confidence = np.concatenate([rows[:, 4], np.full(int(np.sum(missing)), self.options.candidate_floor)])
        order = np.lexsort((notes["pitch"], notes["start_s"]))
        return notes[order], confidence[order]

    def _transcribe(self, audio: Path, out_midi: Path, notes_csv: Path | None, candidates: list | None = None):
        """Write the transcription (and its note table); return its notes."""
        from maestro_cli.audio.io import SILENCE_PEAK, load_audio
        from maestro_cli.symbolic.midi import write_midi
        from maestro_cli.symbolic.notes import write_notes_csv

        self.model()  # a bad checkpoint fails before the audio is decoded
        if self.options.path == "fast":  # streamed: a window of audio in memory, not the recording
            from maestro_transkun.fast import AudioStream

            stream = AudioStream(audio, SAMPLE_RATE)
            notes, pedals = self.events(stream, candidates)
            if stream.peak <= SILENCE_PEAK:
                raise MaestroError("audio is silent (peak at or below -80 dBFS)", audio)
        else:
            notes, pedals = self.events(load_audio(audio, SAMPLE_RATE), candidates)
        controls = [row for start, end, number in pedals for row in ((start, number, 127), (end, number, 0))]
        write_midi(notes, out_midi, controls=controls if self.options.pedals else None)
        if notes_csv is not None:
            write_notes_csv(notes, notes_csv)
        return notes


def window_candidates(model, crf, ctx, floor: float = CANDIDATE_FLOOR, pitches_at_once: int = 22):
    """Candidate notes of one window from its semi-CRF: rows ``(pitch, start_s, end_s, velocity, probability)``,
    times from the window's start.

    The forward-backward marginals of the CRF give each interval's probability; a key's onset probability near a
    frame is the sum over the intervals beginning within one frame of it. Each local maximum of that sum above
    ``floor`` is a candidate, ending at the median end of the intervals beginning at its most probable onset frame,
    with transkun's own onset/offset refinement and velocity for that interval.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F
    from transkun.CRF.NeuralSemiCRFInterval import forward_backward

    score, noise = crf.score, crf.noiseScore  # [end, begin, key], [frame, key]
    n_keys = score.shape[-1]
    onset, best_end = [], []
    for lo in range(0, n_keys, pitches_at_once):  # bounded memory: T x T x pitches_at_once marginals at a time
        _, marginal, _ = forward_backward(score[..., lo:lo + pitches_at_once].contiguous(),
                                          noise[:, lo:lo + pitches_at_once].contiguous())
        onset.append(marginal.sum(0))
        best_end.append((marginal.cumsum(0) >= 0.5 * marginal.sum(0)).to(torch.uint8).argmax(0))  # median end
    onset, best_end = torch.cat(onset, 1), torch.cat(best_end, 1)  # [begin, key]
    near = F.avg_pool1d(onset.T.unsqueeze(1), 3, 1, 1, count_include_pad=True).squeeze(1).T * 3
    peak = (near >= floor) & (near >= F.max_pool1d(near.T.unsqueeze(1), 5, 1, 2).squeeze(1).T)
    frames, keys = (index.tolist() for index in torch.nonzero(peak, as_tuple=True))
    found = sorted((k, max(range(max(t - 1, 0), min(t + 2, len(onset))), key=lambda b, k=k: float(onset[b, k])),
                    min(float(near[t, k]), 1.0)) for t, k in zip(frames, keys) if model.targetMIDIPitch[k] > 0)
    if not found:
        return np.zeros((0, 5))
    intervals = [[] for _ in range(n_keys)]
    for k, b, _ in found:
        intervals[k].append((b, max(int(best_end[b, k]), b)))
    ctx_a, ctx_b, _, _ = model.fetchIntervalFeaturesBatch(ctx, [intervals])
    features = torch.cat([ctx_a, ctx_b, ctx_a * ctx_b], dim=-1)
    velocity = torch.argmax(model.velocityPredictor(features), dim=-1).tolist()
    shift, _ = model.refinedOFPredictor(features).chunk(2, dim=-1)
    shift = torch.clamp((torch.distributions.ContinuousBernoulli(logits=shift).mean - 0.5) / 0.99, -0.5, 0.5).tolist()
    frame_s = model.hopSize / model.fs
    rows = []
    for n, ((k, b, probability), (_, e)) in enumerate(zip(found, (span for spans in intervals for span in spans))):
        start, end = (b + shift[n][0]) * frame_s, (e + shift[n][1]) * frame_s
        rows.append((model.targetMIDIPitch[k], start, max(end, start + frame_s), velocity[n], probability))
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


@hookimpl
def register_transcribers(register):
    register("transkun", TranskunTranscriber, options=TranskunOptions, aliases=("transkun2",),
             description="Transkun v2 (Yan & Duan 2024): notes, velocities, sustain and soft pedal; "
                         "the most accurate installed, slower than onsets-frames",
             priority=30)
