"""A complete, tiny maestro plugin: a sine-tone renderer and a `maestro toy-notes` command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from maestro_cli.hookspecs import hookimpl


@dataclass
class ToyOptions:
    """Options users set with ``-O key=value``."""

    gain: float = 0.3
    tail: float = 0.5


class ToyRenderer:
    """Renders every note as a sine tone with a linear decay (no soundfont needed)."""

    def __init__(self, options: ToyOptions):
        self.options = options

    def render(self, midi: Path, out: Path, *, sample_rate: int, audio_format: str, soundfont: Path | None) -> None:
        import numpy as np
        import soundfile
        import symusic

        score = symusic.Score(str(midi)).to("second")
        notes = [note for track in score.tracks for note in track.notes]
        end = max((note.end for note in notes), default=0.0) + self.options.tail
        audio = np.zeros(int(end * sample_rate) + 1, dtype=np.float32)
        for note in notes:
            start, length = int(note.start * sample_rate), max(1, int(note.duration * sample_rate))
            t = np.arange(length) / sample_rate
            freq = 440.0 * 2 ** ((note.pitch - 69) / 12)
            tone = np.sin(2 * np.pi * freq * t) * np.linspace(1, 0, length) * note.velocity / 127
            audio[start:start + length] += tone.astype(np.float32)
        peak = float(np.abs(audio).max()) or 1.0
        soundfile.write(str(out), audio / peak * self.options.gain, sample_rate, format=audio_format.upper())


@hookimpl
def register_renderers(register):
    register("toy-sine", ToyRenderer, options=ToyOptions, description="Sine tones, for the plugin tutorial")


@hookimpl
def register_commands(app: typer.Typer):
    @app.command("toy-notes")
    def toy_notes(midi: Path) -> None:
        """Print the number of notes in a MIDI file."""
        import symusic

        print(sum(len(track.notes) for track in symusic.Score(str(midi)).tracks))
