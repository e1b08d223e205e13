"""maestro plugin: aligner ``parangonar``, note alignment of a MIDI performance to a score with parangonar.

parangonar's recommended symbolic matcher, ``DualDTWNoteMatcher`` (Peter, Widmer et al., CPJKU): a DTW of the
performance's pitch sequence against the score's onsets, forwards and backwards, then pitch-wise matching
around the resulting score-to-performance map (grace notes mixed in afterwards). The score is read by
maestro (MusicXML, .mxl, MEI, kern or MIDI; as written and unfolded, the more confident kept); the time map is
the median performance onset of the matched notes at each score onset, kept strictly increasing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maestro_cli.hookspecs import hookimpl

DIVS = 480  # divisions per quarter of the score note array handed to parangonar


@dataclass
class ParangonarOptions:
    """Options of the ``parangonar`` aligner (``-O key=value``)."""

    ornaments: bool = False  # let parangonar treat notes with ornaments (trills, turns) separately


class ParangonarAligner:
    """Aligns MIDI performances to a score, note by note, with parangonar's DualDTWNoteMatcher."""

    name = "parangonar"

    def __init__(self, options: ParangonarOptions | None = None):
        self.options = options or ParangonarOptions()

    def align(self, performance: Path, score: Path, *, kind: str):
        from maestro_cli.errors import MaestroError
        from maestro_cli.symbolic.midi import read_midi
        from maestro_cli.symbolic.scores import score_variants

        if kind != "midi":
            raise MaestroError("the parangonar aligner takes MIDI performances only (transcribe audio first)",
                               performance)
        variants = score_variants(score)
        played = read_midi(performance).piano_notes()
        results = [self._align(played, variant) for variant in variants]
        best = max(results, key=lambda result: result.info["confidence"])
        if len(results) > 1:
            best.info["score_variant_confidence"] = {r.score.variant: r.info["confidence"] for r in results}
        return best

    def _align(self, played, score):
        import warnings

        import numpy as np
        import parangonar

        from maestro_cli.align.note_matching import Matching, anchors
        from maestro_cli.align.notes import NoteAlignment
        from maestro_cli.errors import MaestroError
        from maestro_cli.protocols import Alignment

        notes = score.notes
        score_array = np.zeros(len(notes), [("onset_beat", "f8"), ("duration_beat", "f8"), ("onset_quarter", "f8"),
                                            ("duration_quarter", "f8"), ("onset_div", "i8"), ("duration_div", "i8"),
                                            ("pitch", "i4"), ("voice", "i4"), ("id", "U64"), ("divs_pq", "i4"),
                                            ("is_grace", "?")])
        score_array["onset_beat"], score_array["duration_beat"] = notes["onset_beats"], notes["duration_beats"]
        score_array["onset_quarter"] = notes["onset_quarters"]
        score_array["duration_quarter"] = notes["duration_quarters"]
        score_array["onset_div"] = np.round(notes["onset_quarters"] * DIVS)
        score_array["duration_div"] = np.round(notes["duration_quarters"] * DIVS)
        score_array["pitch"], score_array["voice"], score_array["id"] = notes["pitch"], 1, notes["id"]
        score_array["divs_pq"], score_array["is_grace"] = DIVS, notes["grace"]
        perf_array = np.zeros(len(played), [("onset_sec", "f8"), ("duration_sec", "f8"), ("onset_tick", "i8"),
                                            ("duration_tick", "i8"), ("pitch", "i4"), ("velocity", "i4"),
                                            ("track", "i4"), ("channel", "i4"), ("id", "U16")])
        perf_array["onset_sec"], perf_array["pitch"], perf_array["velocity"] = (played["start_s"], played["pitch"],
                                                                               played["velocity"])
        perf_array["duration_sec"] = played["end_s"] - played["start_s"]
        perf_array["onset_tick"] = np.round(played["start_s"] * 1000)
        perf_array["duration_tick"] = np.round(perf_array["duration_sec"] * 1000)
        perf_array["id"] = [f"n{k}" for k in range(len(played))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels = parangonar.DualDTWNoteMatcher()(score_array, perf_array, process_ornaments=self.options.ornaments,
                                                     score_part=score.part)
        score_row = {note_id: k for k, note_id in enumerate(notes["id"])}
        pairs = sorted((score_row[entry["score_id"]], int(entry["performance_id"][1:])) for entry in labels
                       if entry["label"] == "match")
        score_index = np.array([s for s, _ in pairs], int)
        perf_index = np.array([p for _, p in pairs], int)
        matching = Matching(score_index, perf_index, len(notes) - len(pairs), len(played) - len(pairs))
        map_score, map_perf = anchors(notes, played, matching)
        if len(map_score) < 2:
            raise MaestroError("parangonar matched fewer than two score onsets: no alignment", score.path)
        alignment = NoteAlignment(score, played, score_index, perf_index)
        info = {"backend": self.name, "kind": "midi", "score_format": score.format, "score_variant": score.variant,
                "confidence": round(alignment.f_measure(), 4), **alignment.counts()}
        return Alignment(map_score, map_perf, info, score=score, notes=alignment)


@hookimpl
def register_aligners(register):
    register("parangonar", ParangonarAligner, options=ParangonarOptions, aliases=("dualdtw",), priority=1,
             description="parangonar DualDTWNoteMatcher: note alignment of MIDI performances (symbolic)")
