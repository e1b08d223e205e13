"""Transcribe a recording, then pair its notes with the score: the step shared by ``transcribe --score``,
``align --format notes|match`` on audio, and ``report``.

The transcriber and the aligner are backend objects (:class:`maestro_cli.protocols.Transcriber`,
:class:`maestro_cli.protocols.Aligner`) built by the caller, so any installed pair meets here and nowhere else.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maestro_cli.errors import MaestroError

#: Audio performances, note-level output: a transcribed note counts as the score note's if it has its pitch and
#: starts within this many seconds of the score note's time through the alignment.
AUDIO_NOTE_WINDOW = 0.1


@dataclass
class Transcription:
    """A blind transcription: notes as played (no pedal applied), the pedal events, the MIDI file's bytes, and the
    candidates a :class:`maestro_cli.protocols.CandidateTranscriber` weighed (``None`` for other transcribers)."""

    notes: np.ndarray
    controls: np.ndarray
    midi: bytes
    candidates: tuple | None = None


@dataclass
class ScoreInformed:
    """A recording transcribed and aligned to its score; ``result`` is ``None`` when the score does not fit
    (note-matching F-measure ``confidence`` below :data:`maestro_cli.align.informed.MIN_CONFIDENCE`)."""

    transcription: Transcription
    alignment: Any  # maestro_cli.protocols.Alignment
    notes: Any  # maestro_cli.align.notes.NoteAlignment
    confidence: float
    result: Any = None  # maestro_cli.align.informed.Informed


def transcribe(transcriber, audio: Path, midi: Path, with_candidates: bool = True) -> Transcription:
    """Run ``transcriber`` on ``audio`` into ``midi`` (a scratch file the caller owns) and read the notes back;
    ``with_candidates`` also keeps the notes a :class:`~maestro_cli.protocols.CandidateTranscriber` weighed."""
    from maestro_cli.symbolic.midi import read_midi

    if with_candidates and hasattr(transcriber, "transcribe_candidates"):
        candidates = transcriber.transcribe_candidates(audio, midi)
    else:
        candidates = None
        transcriber.transcribe(audio, midi)
    played = read_midi(midi)
    return Transcription(played.piano_notes(), played.controls, midi.read_bytes(), candidates)


def score_informed(audio: Path, score: Path, transcriber, aligner) -> ScoreInformed:
    """Score-informed transcription of ``audio``: its transcription aligned to ``score`` by ``aligner`` and combined
    by :func:`maestro_cli.align.informed.informed` (skipped when the score does not fit)."""
    from maestro_cli.align import informed
    from maestro_cli.audio.io import probe_audio

    if not Path(score).is_file():
        raise MaestroError("no such file", score)
    probe_audio(audio)
    with tempfile.TemporaryDirectory() as folder:
        blind = Path(folder) / "transcription.mid"
        transcription = transcribe(transcriber, audio, blind)
        alignment = aligner.align(blind, score, kind="midi")
    notes = informed.note_alignment(alignment, transcription.notes)
    confidence = notes.f_measure()  # how much of score and transcription pair up
    run = ScoreInformed(transcription, alignment, notes, confidence)
    if confidence >= informed.MIN_CONFIDENCE:
        run.result = informed.informed(notes, np.asarray(alignment.score_times, float),
                                       np.asarray(alignment.performance_times, float), transcription.candidates)
    return run


def note_alignment(alignment, audio: Path, score: Path, transcriber, window: float = AUDIO_NOTE_WINDOW):
    """Note-level alignment of a recording aligned by a time map: the ``transcriber``'s notes paired with the score
    notes mapped through ``alignment`` (same pitch, onset within ``window`` s, closest first)."""
    from maestro_cli.align.notes import from_time_map
    from maestro_cli.symbolic.scores import read_score

    with tempfile.TemporaryDirectory() as folder:
        played = transcribe(transcriber, audio, Path(folder) / "transcription.mid", False).notes
    aligned = alignment.score if alignment.score is not None else read_score(score)
    return from_time_map(aligned, played, np.asarray(alignment.score_times), np.asarray(alignment.performance_times),
                         window)
