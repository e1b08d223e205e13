"""Built-in aligner ``dtw``: chroma + onset features and multi-resolution DTW; note matching for MIDI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from maestro_cli.hookspecs import hookimpl


@dataclass
class DTWOptions:
    """Options of the ``dtw`` aligner (``-o key=value``)."""

    alpha: float = 0.5  # weight of the chroma cost against the onset cost at full resolution
    open_ends: bool = True  # let the path skip leading/trailing noise or applause in the performance
    match_window: float = 0.35  # MIDI performances: first note-matching window around the DTW map, seconds
    score_features: Literal["rendered", "symbolic"] = "rendered"  # audio performances: audio features of the
    # score rendered with the built-in soundfont synth, or features computed directly from the notes


class DTWAligner:
    """Aligns audio or MIDI performances to a score MIDI."""

    name = "dtw"

    def __init__(self, options: DTWOptions | None = None):
        self.options = options or DTWOptions()

    def align(self, performance: Path, score: Path, *, kind: str):
        from maestro_cli.align import dtw, note_matching
        from maestro_cli.align import features as sync_features
        from maestro_cli.protocols import Alignment

        score_notes = sync_features.read_notes(score)  # also rejects a score without notes
        if kind == "audio":
            from maestro_cli.audio.io import load_audio

            audio = load_audio(performance, sync_features.SAMPLE_RATE)
            performance_features = sync_features.audio_features(audio, performance)
            if self.options.score_features == "rendered":
                from maestro_cli.audio.synth import render_midi_to_array

                rendered = render_midi_to_array(score, sample_rate=sync_features.SAMPLE_RATE)
                score_features = sync_features.audio_features(rendered, score)
            else:
                score_features = sync_features.note_features(score_notes)
        else:
            performance_notes = sync_features.read_notes(performance)
            score_features = sync_features.note_features(score_notes)
            performance_features = sync_features.note_features(performance_notes)
        result = dtw.align_features(score_features, performance_features, alpha=self.options.alpha,
                                    open_ends=self.options.open_ends)
        frames_s, frames_p = dtw.strict_pairs(result.score_frames, result.performance_frames)
        score_times, perf_times = score_features.time(frames_s), performance_features.time(frames_p)
        info = {"backend": self.name, "kind": kind, "feature_rate": sync_features.FEATURE_RATE,
                "confidence": round(dtw.confidence(score_features, performance_features, result), 4),
                "cost": round(result.cost, 4)}
        if kind == "midi":
            window = self.options.match_window
            score_times, perf_times, matching = note_matching.refine(
                score_notes, performance_notes, score_times, perf_times, windows=(window, window / 3))
            info.update(chroma_confidence=info["confidence"],
                        confidence=round(matching.f_measure(len(score_notes), len(performance_notes)), 4),
                        matched_notes=matching.matches, deleted_notes=matching.deletions,
                        inserted_notes=matching.insertions)
        return Alignment(score_times, perf_times, info)


@hookimpl
def register_aligners(register):
    register("dtw", DTWAligner, options=DTWOptions, aliases=("builtin",), priority=10,
             description="chroma + onset features, multi-resolution DTW; note matching for MIDI performances")
