"""Built-in renderer ``soundfont``: TinySoundFont embedded (no system library), pretty_midi's GM soundfont."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maestro_cli.hookspecs import hookimpl


@dataclass
class SoundfontOptions:
    """``-O key=value`` options of the ``soundfont`` renderer."""

    tail: float = 1.0  #: seconds rendered after the last note ends
    peak_db: float = -1.0  #: peak level after normalisation, dBFS
    channels: int = 2  #: 1 (mono) or 2 (stereo)
    max_voices: int = 256  #: voices sounding at once; the oldest are cut beyond


class SoundfontRenderer:
    """Renders MIDI with TinySoundFont, event by event, and writes WAV/FLAC (16-bit) with soundfile."""

    def __init__(self, options: SoundfontOptions):
        self.options = options

    def render(self, midi: Path, out: Path, *, sample_rate: int, audio_format: str, soundfont: Path | None) -> None:
        import soundfile

        from maestro_cli.audio.synth import default_soundfont, render_score
        from maestro_cli.symbolic.midi import parse_midi

        options = self.options
        audio = render_score(parse_midi(midi, ttype="second"), soundfont or default_soundfont(), sample_rate,
                             tail=options.tail, channels=options.channels, peak_db=options.peak_db,
                             max_voices=options.max_voices, name=str(midi))
        soundfile.write(str(out), audio, sample_rate, format=audio_format.upper(), subtype="PCM_16")


@hookimpl
def register_renderers(register):
    register("soundfont", SoundfontRenderer, options=SoundfontOptions, aliases=("tinysoundfont", "tsf"),
             description="Embedded TinySoundFont synth (.sf2/.sf3); default soundfont: pretty_midi's TimGM6mb",
             priority=100)
