"""maestro plugin: aligner ``synctoolbox``, MrMsDTW with chroma + DLNCO features (Müller et al., synctoolbox 1.4).

The pipeline is the one of synctoolbox's tutorials: tuning estimation, IIR-filterbank pitch features ->
chroma -> quantised chroma, pitch onsets -> DLNCO, the optimal chroma shift, then ``sync_via_mrmsdtw``
(step weights 1.5/1.5/2, threshold_rec 10^6) and a strictly monotonic path. The score side is, by default,
the same audio features of the score rendered with the built-in soundfont synth (``-o
score_features=rendered``; the audio onset detector's -25 ms offset then cancels out), or synctoolbox's
symbolic features from the notes (``df_to_pitch_features`` / ``df_to_pitch_onset_features``,
``-O score_features=symbolic``). A MIDI performance goes through the symbolic features on both sides.
The score is read by maestro (``maestro_cli.symbolic.scores``: MusicXML, .mxl, MEI, kern or MIDI); a score
with repeats is aligned as written and unfolded, and the more confident alignment kept.
numba's compiled code is cached in
``$NUMBA_CACHE_DIR`` (default ``~/.cache/maestro/numba``): the first run compiles for about 20 s.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from maestro_cli.hookspecs import hookimpl

FEATURE_RATE = 50
SAMPLE_RATE = 22050


@dataclass
class SynctoolboxOptions:
    """Options of the ``synctoolbox`` aligner (``-O key=value``)."""

    alpha: float = 0.5  # weight of the chroma cost against the DLNCO cost at the finest level
    threshold_rec: int = 1_000_000  # maximum area of a constraint rectangle (memory bound)
    score_features: Literal["rendered", "symbolic"] = "rendered"  # audio features of a render, or from the notes


class SynctoolboxAligner:
    """Aligns audio or MIDI performances to a score (MusicXML, .mxl, MEI, kern or MIDI) with synctoolbox's
    MrMsDTW."""

    name = "synctoolbox"

    def __init__(self, options: SynctoolboxOptions | None = None):
        self.options = options or SynctoolboxOptions()

    def align(self, performance: Path, score: Path, *, kind: str):
        """Align to each version of the score (as written, unfolded) and keep the most confident."""
        from maestro_cli.align import dtw
        from maestro_cli.symbolic.midi import read_midi
        from maestro_cli.symbolic.scores import score_variants

        variants = score_variants(score)  # also rejects a file that is not a score, or holds no notes
        midi = read_midi(performance) if kind == "midi" else None
        dtw.numba_cache_dir()
        with contextlib.redirect_stdout(sys.stderr):  # synctoolbox prints progress dots; stdout is for results
            if kind == "audio":
                from maestro_cli.audio.io import load_audio

                perf_features = _audio_features(load_audio(performance, SAMPLE_RATE))
            else:
                perf_features = _note_features(midi.piano_notes(sustain=True))
        played = midi.piano_notes() if midi is not None else None
        results = [self._align(perf_features, variant, kind, played) for variant in variants]
        best = max(results, key=lambda result: result.info["confidence"])
        if len(results) > 1:
            best.info["score_variant_confidence"] = {r.score.variant: r.info["confidence"] for r in results}
        return best

    def _align(self, perf_features, score, kind: str, played):
        import numpy as np
        from synctoolbox.dtw.mrmsdtw import sync_via_mrmsdtw
        from synctoolbox.dtw.utils import compute_optimal_chroma_shift, make_path_strictly_monotonic
        from synctoolbox.feature.chroma import quantized_chroma_to_CENS
        from synctoolbox.feature.utils import shift_chroma_vectors

        from maestro_cli.align import dtw
        from maestro_cli.align import features as sync_features
        from maestro_cli.protocols import Alignment
        from maestro_cli.symbolic.scores import performance_notes

        perf_chroma, perf_dlnco = perf_features
        with contextlib.redirect_stdout(sys.stderr):
            if self.options.score_features == "rendered" and kind == "audio":
                score_chroma, score_dlnco = _audio_features(sync_features.render_score(score, SAMPLE_RATE))
            else:
                score_chroma, score_dlnco = _note_features(performance_notes(score.notes))
        cens_perf = quantized_chroma_to_CENS(perf_chroma, 201, 50, FEATURE_RATE)[0]
        cens_score = quantized_chroma_to_CENS(score_chroma, 201, 50, FEATURE_RATE)[0]
        shift = compute_optimal_chroma_shift(cens_perf, cens_score)
        score_chroma = shift_chroma_vectors(score_chroma, shift)
        score_dlnco = shift_chroma_vectors(score_dlnco, shift)
        with contextlib.redirect_stdout(sys.stderr):
            path = sync_via_mrmsdtw(f_chroma1=perf_chroma, f_onset1=perf_dlnco, f_chroma2=score_chroma,
                                    f_onset2=score_dlnco, input_feature_rate=FEATURE_RATE,
                                    step_weights=np.array([1.5, 1.5, 2.0]),
                                    threshold_rec=self.options.threshold_rec, alpha=self.options.alpha,
                                    verbose=False)
        path = make_path_strictly_monotonic(path).astype(np.int64)
        score_f = sync_features.Features(sync_features._unit_rows(score_chroma.T), score_dlnco.T, 0.0)
        perf_f = sync_features.Features(sync_features._unit_rows(perf_chroma.T), perf_dlnco.T, 0.0)
        cost = float(np.mean(1.0 - np.einsum("ij,ij->i", score_f.chroma[path[1]], perf_f.chroma[path[0]])))
        result = dtw.DTWResult(path[1], path[0], cost)
        info = {"backend": self.name, "kind": kind, "feature_rate": FEATURE_RATE, "chroma_shift": int(shift),
                "confidence": round(dtw.confidence(score_f, perf_f, result), 4), "cost": round(cost, 4),
                "score_format": score.format, "score_variant": score.variant}
        score_times, perf_times = path[1] / FEATURE_RATE, path[0] / FEATURE_RATE
        notes = None
        if played is not None:  # note pairs matched around the map; their F-measure tells the score variants apart
            from maestro_cli.align.note_matching import ORDER_BAND
            from maestro_cli.align.notes import match_performance

            _, _, notes = match_performance(score, played, score_times, perf_times, band=ORDER_BAND)
            info.update(chroma_confidence=info["confidence"], confidence=round(notes.f_measure(), 4),
                        **notes.counts())
        return Alignment(score_times, perf_times, info, score=score, notes=notes)


def _audio_features(audio):
    """Quantised chroma and DLNCO (12 x frames) of mono audio at 22.05 kHz."""
    from synctoolbox.feature.chroma import pitch_to_chroma, quantize_chroma
    from synctoolbox.feature.dlnco import pitch_onset_features_to_DLNCO
    from synctoolbox.feature.pitch import audio_to_pitch_features
    from synctoolbox.feature.pitch_onset import audio_to_pitch_onset_features
    from synctoolbox.feature.utils import estimate_tuning

    tuning = estimate_tuning(audio, SAMPLE_RATE)
    pitch = audio_to_pitch_features(f_audio=audio, Fs=SAMPLE_RATE, tuning_offset=tuning, feature_rate=FEATURE_RATE)
    chroma = quantize_chroma(pitch_to_chroma(f_pitch=pitch))
    onsets = audio_to_pitch_onset_features(f_audio=audio, Fs=SAMPLE_RATE, tuning_offset=tuning)
    dlnco = pitch_onset_features_to_DLNCO(f_peaks=onsets, feature_rate=FEATURE_RATE,
                                          feature_sequence_length=chroma.shape[1])
    return chroma, dlnco


def _note_features(notes):
    """Quantised chroma and DLNCO (12 x frames) computed by synctoolbox from notes (score time)."""
    import pandas as pd
    from synctoolbox.feature.chroma import pitch_to_chroma, quantize_chroma
    from synctoolbox.feature.csv_tools import df_to_pitch_features, df_to_pitch_onset_features
    from synctoolbox.feature.dlnco import pitch_onset_features_to_DLNCO

    frame = pd.DataFrame({"start": notes["start_s"].astype(float),
                          "duration": (notes["end_s"] - notes["start_s"]).astype(float),
                          "pitch": notes["pitch"].astype(int), "velocity": notes["velocity"].astype(float),
                          "instrument": "piano"})
    pitch = df_to_pitch_features(frame, feature_rate=FEATURE_RATE)
    chroma = quantize_chroma(pitch_to_chroma(f_pitch=pitch))
    dlnco = pitch_onset_features_to_DLNCO(f_peaks=df_to_pitch_onset_features(frame), feature_rate=FEATURE_RATE,
                                          feature_sequence_length=chroma.shape[1])
    return chroma, dlnco


@hookimpl
def register_aligners(register):
    register("synctoolbox", SynctoolboxAligner, options=SynctoolboxOptions, aliases=("mrmsdtw",), priority=5,
             description="synctoolbox MrMsDTW with chroma + DLNCO features (numba)")
