"""Every stage on one shared table of bad inputs (docs/errors.md): one line on stderr naming the file, the documented
exit code, no traceback, nothing left behind.

The stages run in this process through the command's entry point (``maestro_cli.cli.app.main``), so the table costs
no interpreter or torch start-up per case; the fastest backends serve them (the built-in renderer, onsets-frames).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import write_midi

#: Each bad input: how it is made from a good file of the slot's kind (bytes), with the slot's suffix.
KINDS = ("empty", "truncated", "wrong_type", "foreign", "unreadable", "directory", "long_name", "non_ascii")
#: Exit code per kind (docs/errors.md): every bad input is exit 1; a folder where a file is expected too, but a
#: folder without inputs given to a batch stage (or to evaluate) is a usage error, exit 2.
EXIT = dict.fromkeys(KINDS, 1)
BATCH = {"render", "transcribe", "align", "tokenize", "evaluate"}
#: What the line says, per kind (one of these).
REASON = {"empty": ("empty file (0 bytes)",), "truncated": ("not a readable", "truncated"),
          "wrong_type": ("not a", "neither", "a PNG image"), "foreign": ("not a", "neither", "a MIDI file, not audio"),
          "unreadable": ("permission denied",), "directory": ("is a folder", "found in it", "a folder, but"),
          "long_name": ("file name too long",), "non_ascii": ("empty file (0 bytes)",)}
#: Bytes of the header only, per suffix: a file cut short where its content starts.
HEADER = {".mid": 22, ".wav": 44, ".musicxml": 200}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

#: stage -> (suffix of the bad input's slot, the suffix of a good file of a format the slot does not take, arguments
#: with BAD for the bad input, GOOD_* for good companions, OUT for the output folder)
STAGES = {
    "render": (".mid", ".wav", ["render", "BAD", "--out-dir", "OUT", "-b", "soundfont", "--sample-rate", "16000"]),
    "transcribe": (".wav", ".mid", ["transcribe", "BAD", "--out-dir", "OUT", "-b", "onsets-frames"]),
    "align": (".mid", ".musicxml", ["align", "BAD", "--score", "GOOD_SCORE", "--out-dir", "OUT"]),  # audio is fine
    "align --score": (".musicxml", ".wav", ["align", "GOOD_MIDI", "--score", "BAD", "--out-dir", "OUT"]),
    "tokenize": (".mid", ".wav", ["tokenize", "BAD", "--out-dir", "OUT"]),
    "evaluate": (".mid", ".wav", ["evaluate", "transcription", "--ref", "BAD", "--est", "GOOD_MIDI"]),
    "generate --primer": (".mid", ".wav", ["generate", "--primer", "BAD", "--seconds", "1", "--seed", "1",
                                           "--out-dir", "OUT"]),
    "transcribe --score": (".musicxml", ".wav", ["transcribe", "GOOD_WAV", "--score", "BAD", "-o", "OUT/x.mid", "-b",
                                                 "onsets-frames"]),
}
EXCERPT = Path("maestro-audio-excerpt") / "2018" / "MIDI-Unprocessed_Chamber3_MID--AUDIO_10_R3_2018_wav--1.wav"


@pytest.fixture(scope="module")
def good(shared_data, tmp_path_factory) -> dict[str, Path]:
    """Good files of each kind: a short MIDI, the 2 s MAESTRO excerpt (WAV), a MusicXML score."""
    folder = tmp_path_factory.mktemp("good")
    midi = write_midi(folder / "good.mid", [(60 + k, 0.25 * k, 0.25 * k + 0.5, 70) for k in range(8)])
    wav = folder / "good.wav"
    shutil.copy(shared_data / EXCERPT, wav)
    score = folder / "good.musicxml"
    shutil.copy(shared_data / "partitura-examples" / "musicxml" / "mozart_k265_var1.musicxml", score)
    return {".mid": midi, ".wav": wav, ".musicxml": score}


def make_bad(kind: str, suffix: str, foreign: Path, folder: Path, good: dict[str, Path]) -> Path:
    """The bad input ``kind`` for a slot that takes ``suffix`` files (``foreign``: a good file it does not take)."""
    content = good[suffix].read_bytes()
    names = {"long_name": "x" * 300 + suffix, "non_ascii": "Étude-ünd-片" + suffix}
    path = folder / names.get(kind, f"bad{suffix}")
    if kind == "long_name":
        return path
    if kind == "directory":
        path.mkdir()
        return path
    path.write_bytes({"empty": b"", "non_ascii": b"", "truncated": content[:HEADER[suffix]], "wrong_type": PNG,
                      "foreign": foreign.read_bytes(), "unreadable": content}[kind])
    if kind == "unreadable":
        path.chmod(0)
    return path


def run_stage(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run ``maestro ARGV`` through its entry point; (exit code, stdout, stderr)."""
    from maestro_cli.cli.app import main

    capsys.readouterr()
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stage", list(STAGES))
def test_a_bad_input_is_one_line_naming_it_and_leaves_nothing(stage, kind, good, tmp_path, capsys, monkeypatch):
    if kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads a file without read permission")
    monkeypatch.delenv("MAESTRO_DEBUG", raising=False)
    suffix, foreign, template = STAGES[stage]
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    bad = make_bad(kind, suffix, good[foreign], inputs, good)
    before = sorted(inputs.iterdir())
    values = {"BAD": str(bad), "OUT": str(out), "GOOD_MIDI": str(good[".mid"]), "GOOD_WAV": str(good[".wav"]),
              "GOOD_SCORE": str(good[".musicxml"])}
    argv = [values.get(arg, arg.replace("OUT/", f"{out}/")) for arg in template]
    code, stdout, stderr = run_stage(argv, capsys)
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: "), (argv, stderr)
    assert any(reason in lines[0] for reason in REASON[kind]), lines[0]
    assert code == (2 if kind == "directory" and stage in BATCH else EXIT[kind]), (code, stderr)
    assert "Traceback" not in stderr and stdout == ""
    assert not out.exists() or not list(out.iterdir())  # nothing left behind, not even a temporary file
    assert sorted(inputs.iterdir()) == before
