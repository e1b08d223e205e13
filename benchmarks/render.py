"""Render benchmark: the embedded ``soundfont`` renderer against the FluidSynth CLI, same soundfont, same run.

Input: the N longest MAESTRO v3 test-split MIDI files (default 10, about 3.6 hours of music). Both render
each file to a 44.1 kHz 16-bit WAV with pretty_midi's TimGM6mb soundfont, one after the other per file, so a
busy machine slows both alike. Ours is measured stereo (the CLI default) and mono (``-O channels=1``, what
training-data synthesis uses); the peer is ``fluidsynth -ni -g 1.0 -r 44100 -F out.wav SF MIDI``.
Speed is seconds of music per second of wall time ("x real time"); the ratio is ours (stereo) / FluidSynth.

Run: ``.venv/bin/python benchmarks/render.py [--files 10] [--shared ../shared/data]``.
Prints a rich table and one JSON line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import MAESTRO_MIDI, argument_parser, console, emit, maestro_test_rows, table, timed

from maestro_cli.audio.synth import default_soundfont
from maestro_cli.backends.soundfont import SoundfontOptions, SoundfontRenderer

SAMPLE_RATE = 44100


def longest_test_midis(shared: Path, count: int) -> list[tuple[Path, float]]:
    """The ``count`` longest test-split performances: (MIDI path, duration in seconds)."""
    rows = sorted(maestro_test_rows(shared, "v3"), key=lambda row: -float(row["duration"]))
    return [(shared / MAESTRO_MIDI / row["midi_filename"], float(row["duration"])) for row in rows[:count]]


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--files", type=int, default=10)
    args = parser.parse_args()
    progress = console()
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None:
        sys.exit("fluidsynth not found: apt-get install fluidsynth")
    soundfont = default_soundfont()
    stereo = SoundfontRenderer(SoundfontOptions(channels=2))
    mono = SoundfontRenderer(SoundfontOptions(channels=1))
    files = longest_test_midis(args.shared, args.files)
    results = table(f"render: {len(files)} longest MAESTRO v3 test MIDIs, {soundfont.name}, {SAMPLE_RATE} Hz",
                    ("file", "music (s)", "soundfont stereo (x RT)", "soundfont mono (x RT)", "FluidSynth CLI (x RT)"))
    totals = {"stereo": 0.0, "mono": 0.0, "fluidsynth": 0.0}
    music = 0.0
    with tempfile.TemporaryDirectory(prefix="maestro-bench-render-") as tmp:
        out = Path(tmp) / "out.wav"
        for midi, length in files:
            seconds = {
                "stereo": timed(lambda: stereo.render(midi, out, sample_rate=SAMPLE_RATE, audio_format="wav",
                                                      soundfont=soundfont))[0],
                "mono": timed(lambda: mono.render(midi, out, sample_rate=SAMPLE_RATE, audio_format="wav",
                                                  soundfont=soundfont))[0],
                "fluidsynth": timed(lambda: subprocess.run(
                    [fluidsynth, "-ni", "-q", "-g", "1.0", "-r", str(SAMPLE_RATE), "-F", str(out), str(soundfont),
                     str(midi)], check=True, capture_output=True, stdin=subprocess.DEVNULL))[0],
            }
            music += length
            for key, value in seconds.items():
                totals[key] += value
            results.add_row(midi.name[:48], f"{length:.0f}", *(f"{length / seconds[key]:.1f}" for key in totals))
            progress.print(f"{midi.name}: " + ", ".join(f"{key} {length / t:.1f}x" for key, t in seconds.items()))
    speed = {key: music / value for key, value in totals.items()}
    results.add_row("total", f"{music:.0f}", *(f"{speed[key]:.1f}" for key in totals), style="bold")
    console(stdout=True).print(results)
    emit("render", {
        "files": len(files), "music_s": round(music, 1), "sample_rate": SAMPLE_RATE,
        "soundfont": soundfont.name, "soundfont_stereo_x_rt": round(speed["stereo"], 1),
        "soundfont_mono_x_rt": round(speed["mono"], 1), "fluidsynth_cli_x_rt": round(speed["fluidsynth"], 1),
        "ratio_stereo_vs_fluidsynth": round(speed["stereo"] / speed["fluidsynth"], 2),
        "ratio_mono_vs_fluidsynth": round(speed["mono"] / speed["fluidsynth"], 2),
    })


if __name__ == "__main__":
    main()
