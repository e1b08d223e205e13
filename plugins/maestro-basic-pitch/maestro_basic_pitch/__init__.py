"""maestro plugin: transcriber ``basic-pitch`` on Spotify's basic-pitch 0.4 with its shipped ONNX model.

No TensorFlow: basic-pitch is imported with TensorFlow, CoreML and TFLite blocked, and the ONNX model runs
in onnxruntime. Long recordings are decoded in segments (default 60 s, with margins) so that memory stays
bounded and note decoding stays linear in the length of the recording.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from maestro_cli.errors import UsageError
from maestro_cli.hookspecs import hookimpl

#: Modules basic-pitch probes at import time; blocking them keeps TensorFlow (which crashes beside numpy 2) out.
_BLOCKED = ("tensorflow", "coremltools", "tflite_runtime")
_SAMPLE_RATE = 22050
_FFT_HOP = 256
_WINDOW = 2 * _SAMPLE_RATE - _FFT_HOP  # basic-pitch's AUDIO_N_SAMPLES
_OVERLAP_FRAMES = 30
_WINDOW_HOP = _WINDOW - _OVERLAP_FRAMES * _FFT_HOP  # 36164 samples between model windows
_FRAMES_PER_WINDOW = 2 * _SAMPLE_RATE // _FFT_HOP - _OVERLAP_FRAMES  # 142 output frames kept per window
_LEFT_MARGIN_WINDOWS = 2
_RIGHT_MARGIN_S = 10.0
_BATCH = 8


@dataclass
class BasicPitchOptions:
    """basic-pitch's note-decoding settings (its own defaults) and the segment length."""

    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    minimum_note_length_ms: float = 127.7
    minimum_frequency: float | None = None
    maximum_frequency: float | None = None
    melodia_trick: bool = True
    pitch_bends: bool = False
    multiple_pitch_bends: bool = False
    segment_seconds: float = 60.0
    threads: int = 0

    def __post_init__(self) -> None:
        for name in ("onset_threshold", "frame_threshold"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise UsageError(f"basic-pitch option {name} must be between 0 and 1")
        if self.minimum_note_length_ms < 0:
            raise UsageError("basic-pitch option minimum_note_length_ms must be >= 0")
        if self.segment_seconds < 10:
            raise UsageError("basic-pitch option segment_seconds must be at least 10")
        if self.threads < 0:
            raise UsageError("basic-pitch option threads must be >= 0 (0: onnxruntime's default)")


@contextlib.contextmanager
def _without_tensorflow() -> Iterator[None]:
    """Make ``import tensorflow`` (and CoreML/TFLite) fail fast while basic-pitch is imported; mute its warnings."""
    added = [name for name in _BLOCKED if name not in sys.modules]
    for name in added:
        sys.modules[name] = None  # type: ignore[assignment]  # an ImportError on import
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # resampy's pkg_resources deprecation warning
            yield
    finally:
        logging.disable(logging.NOTSET)
        for name in added:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


class BasicPitchTranscriber:
    """Transcribes recordings with basic-pitch's ONNX model, one bounded segment at a time."""

    def __init__(self, options: BasicPitchOptions):
        self.options = options
        self._session = None

    def _model(self):
        if self._session is None:
            import onnxruntime

            with _without_tensorflow():
                from basic_pitch import FilenameSuffix, build_icassp_2022_model_path
            settings = onnxruntime.SessionOptions()
            settings.intra_op_num_threads = self.options.threads
            settings.inter_op_num_threads = 1
            model = build_icassp_2022_model_path(FilenameSuffix.onnx)
            self._session = onnxruntime.InferenceSession(str(model), settings, providers=["CPUExecutionProvider"])
        return self._session

    def activations(self, audio) -> dict:
        """Frame, onset and contour activations for mono 22.05 kHz ``audio``, windowed as basic-pitch does.

        Output frame ``n`` lies at sample ``(n // 142) * 36164 + (n % 142) * 256`` (see :func:`frame_times`).
        """
        import numpy as np

        padded = np.concatenate([np.zeros(_OVERLAP_FRAMES * _FFT_HOP // 2, dtype=np.float32), audio])
        starts = range(0, len(padded), _WINDOW_HOP)
        outputs: dict[str, list] = {"note": [], "onset": [], "contour": []}
        names = ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2", "StatefulPartitionedCall:0"]
        session = self._model()
        for first in range(0, len(starts), _BATCH):
            batch = starts[first:first + _BATCH]
            windows = np.zeros((len(batch), _WINDOW, 1), dtype=np.float32)
            for row, start in enumerate(batch):
                chunk = padded[start:start + _WINDOW]
                windows[row, :len(chunk), 0] = chunk
            for key, value in zip(outputs, session.run(names, {"serving_default_input_2:0": windows})):
                trim = _OVERLAP_FRAMES // 2
                outputs[key].append(value[:, trim:-trim].reshape(-1, value.shape[-1]))
        n_frames = int(np.floor(len(audio) * (_SAMPLE_RATE // _FFT_HOP) / _SAMPLE_RATE))
        return {key: np.concatenate(value)[:n_frames] for key, value in outputs.items()}

    def _segment_notes(self, audio) -> list[tuple]:
        """Note events ``(onset_s, offset_s, pitch, amplitude, bends)`` of one segment, times from its start."""
        import numpy as np

        with _without_tensorflow():
            from basic_pitch.note_creation import get_pitch_bends, output_to_notes_polyphonic

        acts = self.activations(audio)
        if len(acts["note"]) < 3:
            return []
        o = self.options
        with np.errstate(divide="ignore", invalid="ignore"):  # a silent segment normalises by zero: no notes
            events = output_to_notes_polyphonic(
                acts["note"], acts["onset"], onset_thresh=o.onset_threshold, frame_thresh=o.frame_threshold,
                min_note_len=int(np.round(o.minimum_note_length_ms / 1000 * (_SAMPLE_RATE / _FFT_HOP))),
                infer_onsets=True, max_freq=o.maximum_frequency, min_freq=o.minimum_frequency,
                melodia_trick=o.melodia_trick)
        if o.pitch_bends:
            events = get_pitch_bends(acts["contour"], events)
        else:
            events = [(*event, None) for event in events]
        times = frame_times(len(acts["note"]) + 1)
        return [(float(times[start]), float(times[end]), int(pitch), float(amplitude), bends)
                for start, end, pitch, amplitude, bends in events]

    def note_events(self, audio) -> list[tuple]:
        """All note events of mono 22.05 kHz ``audio``, decoded segment by segment.

        Segments start on the model's window grid and are decoded with two windows (3.3 s) of audio before
        them and 10 s after; only notes that start inside a segment are kept, so a note crossing a border is
        neither cut nor duplicated, and memory and decoding time grow linearly with the recording.
        """
        segment = max(1, round(self.options.segment_seconds * _SAMPLE_RATE / _WINDOW_HOP)) * _WINDOW_HOP
        left, right = _LEFT_MARGIN_WINDOWS * _WINDOW_HOP, int(_RIGHT_MARGIN_S * _SAMPLE_RATE)
        notes = []
        for begin in range(0, len(audio), segment):
            end = begin + segment
            lo, hi = max(0, begin - left), min(len(audio), end + right)
            for onset, offset, pitch, amplitude, bends in self._segment_notes(audio[lo:hi]):
                onset, offset = onset + lo / _SAMPLE_RATE, offset + lo / _SAMPLE_RATE
                if onset * _SAMPLE_RATE >= begin - (begin == 0) and (end >= len(audio) or onset * _SAMPLE_RATE < end):
                    notes.append((onset, offset, pitch, amplitude, bends))
        notes.sort(key=lambda note: (note[0], note[2]))
        return notes

    def transcribe(self, audio: Path, out_midi: Path, *, notes_csv: Path | None = None) -> None:
        import numpy as np

        from maestro_cli.audio.io import load_audio
        from maestro_cli.symbolic.midi import write_midi
        from maestro_cli.symbolic.notes import make_notes, write_notes_csv

        events = self.note_events(load_audio(audio, _SAMPLE_RATE))
        velocities = [int(np.clip(round(127 * amplitude), 1, 127)) for _, _, _, amplitude, _ in events]
        notes = make_notes([event[2] for event in events], [event[0] for event in events],
                           [event[1] for event in events], velocities)
        if self.options.pitch_bends:
            with _without_tensorflow():
                from basic_pitch.note_creation import note_events_to_midi

            midi = note_events_to_midi([(*event[:3], velocity / 127, event[4]) for event, velocity
                                        in zip(events, velocities)], self.options.multiple_pitch_bends)
            for instrument in midi.instruments:
                instrument.program, instrument.name = 0, "Piano"
            midi.write(str(out_midi))
        else:
            write_midi(notes, out_midi)
        if notes_csv is not None:
            write_notes_csv(notes, notes_csv)


def frame_times(n_frames: int):
    """Seconds of basic-pitch's output frames: each 2 s model window contributes 142 frames of 256 samples
    and windows are 36164 samples apart (exact, unlike basic-pitch's drift-corrected approximation)."""
    import numpy as np

    n = np.arange(n_frames)
    return ((n // _FRAMES_PER_WINDOW) * _WINDOW_HOP + (n % _FRAMES_PER_WINDOW) * _FFT_HOP) / _SAMPLE_RATE


@hookimpl
def register_transcribers(register):
    register("basic-pitch", BasicPitchTranscriber, options=BasicPitchOptions, aliases=("basic_pitch", "bp"),
             description="Spotify basic-pitch 0.4 (ONNX model, no TensorFlow); polyphonic, instrument-agnostic",
             priority=10)
