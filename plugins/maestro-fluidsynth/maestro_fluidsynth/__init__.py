"""maestro plugin: renderer ``fluidsynth``, the FluidSynth command-line synth (any .sf2/.sf3).

FluidSynth is run the way midi2audio runs it (``fluidsynth -ni SOUNDFONT MIDI -F OUT -r RATE``) plus what
midi2audio cannot do: a gain (FluidSynth's default 0.2 is near-silent), float output, and a check of the
exit status and error messages. The result is trimmed or padded to the last note's end plus the tail and
peak-normalised, like the built-in ``soundfont`` renderer.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from maestro_cli.errors import MaestroError
from maestro_cli.hookspecs import hookimpl

#: Debian's fluid-soundfont-gm; pretty_midi's TimGM6mb is used when it is not installed.
SYSTEM_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
NOT_FOUND = "fluidsynth not found; install it (e.g. apt-get install fluidsynth) or use --backend soundfont"


@dataclass
class FluidsynthOptions:
    """``-O key=value`` options of the ``fluidsynth`` renderer."""

    gain: float = 1.0  #: FluidSynth's synth.gain (0..10); float output never clips before normalisation
    tail: float = 1.0  #: seconds kept after the last note ends
    peak_db: float = -1.0  #: peak level after normalisation, dBFS
    channels: int = 2  #: 1 (mono downmix) or 2 (stereo)
    reverb: bool = True  #: FluidSynth's reverb and chorus


def default_soundfont() -> Path:
    """FluidR3_GM from Debian's fluid-soundfont-gm if installed, else pretty_midi's TimGM6mb."""
    if SYSTEM_SOUNDFONT.is_file():
        return SYSTEM_SOUNDFONT
    from maestro_cli.audio.synth import default_soundfont as embedded

    return embedded()


class FluidsynthRenderer:
    """Renders MIDI files with the ``fluidsynth`` binary."""

    def __init__(self, options: FluidsynthOptions):
        self.options = options
        binary = shutil.which("fluidsynth")
        if binary is None:
            raise MaestroError(NOT_FOUND)
        self.binary = binary

    def render(self, midi: Path, out: Path, *, sample_rate: int, audio_format: str, soundfont: Path | None) -> None:
        import numpy as np
        import soundfile

        from maestro_cli.audio.synth import normalise, score_events
        from maestro_cli.symbolic.midi import parse_midi

        options = self.options
        if options.channels not in (1, 2):
            raise MaestroError(f"channels must be 1 or 2, not {options.channels}")
        events, end = score_events(parse_midi(midi, ttype="second"))
        if not events:
            raise MaestroError("no notes to render", midi)
        soundfont = soundfont or default_soundfont()
        with tempfile.TemporaryDirectory(prefix="maestro-fluidsynth-") as tmp:
            raw = Path(tmp) / "out.wav"
            self._run(midi, soundfont, raw, sample_rate)
            audio, _ = soundfile.read(str(raw), dtype="float32", always_2d=True)
        total = int(round((end + max(options.tail, 0.0)) * sample_rate))
        audio = np.pad(audio[:total], ((0, max(0, total - len(audio))), (0, 0)))
        audio = audio.mean(axis=1) if options.channels == 1 else np.ascontiguousarray(audio)
        audio = normalise(audio, options.peak_db, str(midi))
        soundfile.write(str(out), audio, sample_rate, format=audio_format.upper(), subtype="PCM_16")

    def _run(self, midi: Path, soundfont: Path, raw: Path, sample_rate: int) -> None:
        """Run FluidSynth; a non-zero exit status or an error message becomes a MaestroError."""
        options = self.options
        command = [self.binary, "-ni", "-q", "-g", str(options.gain), "-r", str(sample_rate), "-O", "float",
                   "-T", "wav", "-F", str(raw)]
        if not options.reverb:
            command += ["-R", "0", "-C", "0"]
        command += [str(soundfont), str(midi)]
        result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        messages = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        problems = [line for line in messages if "error" in line.lower() or "not a soundfont" in line.lower()]
        if result.returncode != 0 or problems or not raw.is_file():
            detail = "; ".join(problems or messages[-2:]) or "no output"
            raise MaestroError(f"fluidsynth failed (exit status {result.returncode}): {detail}", midi)


@hookimpl
def register_renderers(register):
    register("fluidsynth", FluidsynthRenderer, options=FluidsynthOptions,
             description="The FluidSynth CLI (system binary; FluidR3_GM by default when installed)", priority=50)
