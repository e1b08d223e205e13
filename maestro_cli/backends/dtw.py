"""Built-in aligner ``dtw``: chroma + onset features and multi-resolution DTW; note matching for MIDI; for audio,
the map refined by a transcriber's note onsets (:mod:`maestro_cli.align.onset_map`) when the caller gives one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from maestro_cli.align.note_matching import ORDER_BAND
from maestro_cli.hookspecs import hookimpl


@dataclass
class DTWOptions:
    """Options of the ``dtw`` aligner (``-O key=value``)."""

    alpha: float = 0.5  # weight of the chroma cost against the onset cost at full resolution
    open_ends: bool = True  # let the path skip leading/trailing noise or applause in the performance
    match_window: float = 0.35  # MIDI performances: first note-matching window around the DTW map, seconds
    order_band: float = ORDER_BAND  # MIDI performances: score and played chords aligned in order within this many
    # seconds of the DTW map before the windows (0: off; see align.note_matching.chord_chain)
    score_features: Literal["rendered", "symbolic"] = "rendered"  # audio performances: audio features of the
    # score rendered with the built-in soundfont synth, or features computed directly from the notes
    refine: bool = True  # audio performances: refine the feature map by the note onsets of the transcriber the
    # caller gives (``transcriber``; the align command passes --transcriber, default onsets-frames)


class DTWAligner:
    """Aligns audio or MIDI performances to a score (MusicXML, MEI, kern or MIDI)."""

    name = "dtw"

    def __init__(self, options: DTWOptions | None = None):
        self.options = options or DTWOptions()
        self.transcriber = None  # a maestro_cli.protocols.Transcriber, injected by the caller, for ``refine``

    @property
    def uses_transcriber(self) -> bool:
        """Whether audio alignments want a transcriber (``refine``)."""
        return self.options.refine

    def align(self, performance: Path, score: Path, *, kind: str):
        """Align to each version of the score (as written, unfolded) and keep the most confident."""
        from maestro_cli.symbolic.scores import score_variants

        variants = score_variants(score)  # also rejects a score without notes
        performance_side = self._performance(performance, kind)
        results = [self._align(performance_side, variant, kind) for variant in variants]
        best = max(results, key=lambda result: result.info["confidence"])
        if len(results) > 1:
            best.info["score_variant_confidence"] = {r.score.variant: r.info["confidence"] for r in results}
        return best

    def _performance(self, performance: Path, kind: str):
        """Features of the performance and, for MIDI, its notes as played (for note matching)."""
        from maestro_cli.align import features as sync_features

        if kind == "audio":
            from maestro_cli.audio.io import load_audio

            audio = load_audio(performance, sync_features.SAMPLE_RATE)
            features = sync_features.audio_features(audio, performance)
            if not (self.options.refine and self.transcriber is not None):
                return features, None
            import tempfile

            from maestro_cli.align.transcribed import transcribe

            with tempfile.TemporaryDirectory() as folder:
                played = transcribe(self.transcriber, performance, Path(folder) / "transcription.mid", False).notes
            return features, played
        from maestro_cli.symbolic.midi import read_midi

        midi = read_midi(performance)
        return sync_features.note_features(midi.piano_notes(sustain=True)), midi.piano_notes()

    def _align(self, performance_side, score, kind: str):
        from maestro_cli.align import features as sync_features
        from maestro_cli.protocols import Alignment
        from maestro_cli.symbolic.scores import performance_notes

        performance_features, played = performance_side
        if kind == "audio" and self.options.score_features == "rendered":
            score_features = sync_features.audio_features(sync_features.render_score(score), score.path)
        else:
            score_features = sync_features.note_features(performance_notes(score.notes))
        score_times, perf_times, path_info = self._path(score_features, performance_features, self.options.open_ends)
        info = {"backend": self.name, "kind": kind, **path_info, "score_format": score.format,
                "score_variant": score.variant}
        notes = None
        if kind == "audio" and played is not None:
            from maestro_cli.align.notes import NoteAlignment
            from maestro_cli.align.onset_map import onset_map

            refined = onset_map(score.notes, played, score_times, perf_times)
            score_times, perf_times = refined.score_times, refined.performance_times
            info.update(refined=True, **refined.info())
            if refined.matching is not None:
                notes = NoteAlignment(score, played, refined.matching.score_index,
                                      refined.matching.performance_index)
        elif kind == "audio":
            info["refined"] = False
        if kind == "midi":
            score_times, perf_times, notes = self._match(score, played, score_times, perf_times)
            outside = (played["start_s"] < perf_times[0]) | (played["start_s"] > perf_times[-1])
            if self.options.open_ends and outside.any():  # the open ends left notes out: were they music?
                closed = self._path(score_features, performance_features, False)
                matched = self._match(score, played, closed[0], closed[1])
                if matched[2].f_measure() > notes.f_measure():  # closed ends pair more notes: keep them
                    (score_times, perf_times, notes), info = matched, {**info, **closed[2], "ends": "closed"}
            info.update(chroma_confidence=info["confidence"], confidence=round(notes.f_measure(), 4),
                        **notes.counts())
        return Alignment(score_times, perf_times, info, score=score, notes=notes)

    def _path(self, score_features, performance_features, open_ends: bool):
        """The DTW map (score times, performance times) and its info (confidence, cost)."""
        from maestro_cli.align import dtw
        from maestro_cli.align import features as sync_features

        result = dtw.align_features(score_features, performance_features, alpha=self.options.alpha,
                                    open_ends=open_ends)
        frames_s, frames_p = dtw.strict_pairs(result.score_frames, result.performance_frames)
        info = {"feature_rate": sync_features.FEATURE_RATE,
                "confidence": round(dtw.confidence(score_features, performance_features, result), 4),
                "cost": round(result.cost, 4)}
        return score_features.time(frames_s), performance_features.time(frames_p), info

    def _match(self, score, played, score_times, perf_times):
        """MIDI performances: the notes paired around the DTW map, and the map they refine."""
        from maestro_cli.align.notes import match_performance

        window = self.options.match_window
        return match_performance(score, played, score_times, perf_times, windows=(window, window / 3),
                                 band=self.options.order_band)


@hookimpl
def register_aligners(register):
    register("dtw", DTWAligner, options=DTWOptions, aliases=("builtin",), priority=10,
             description="chroma + onset features, multi-resolution DTW; note matching for MIDI performances")
