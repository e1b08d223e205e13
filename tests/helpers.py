"""Helpers for driving the real CLI in tests."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAESTRO = Path(sys.executable).parent / "maestro"


def benchmark(name: str):
    """The script ``benchmarks/NAME.py`` as a module, its folder on ``sys.path`` (last) as when it runs, for
    ``common``."""
    folder = str(REPO / "benchmarks")
    if folder not in sys.path:
        sys.path.append(folder)
    return importlib.import_module(name)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_maestro(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
                cwd: Path | None = None, timeout: float = 300) -> Result:
    """Run the installed ``maestro`` command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([str(MAESTRO), *args], input=stdin if stdin is not None else "", capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def write_midi(path: Path, notes: list[tuple[int, float, float, int]], pedal: list[tuple[float, int]] = ()) -> Path:
    """A one-track piano MIDI with ``(pitch, start_s, end_s, velocity)`` notes and CC64 ``(time_s, value)`` events."""
    import symusic

    score = symusic.Score(480)
    score.tempos.append(symusic.Tempo(0, 120.0))
    track = symusic.Track("piano", program=0)
    def ticks(seconds):  # 120 bpm, 480 tpq -> 960 ticks per second
        return int(round(seconds * 960))
    for pitch, start, end, velocity in notes:
        track.notes.append(symusic.Note(ticks(start), ticks(end) - ticks(start), pitch, velocity))
    for time, value in pedal:
        track.controls.append(symusic.ControlChange(ticks(time), 64, value))
    score.tracks.append(track)
    score.dump_midi(str(path))
    return path
