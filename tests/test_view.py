"""`maestro view`: a piano-roll PNG with velocity as colour and the sustain pedal as a band."""

from __future__ import annotations

import json

import numpy as np
from helpers import run_maestro, write_midi
from PIL import Image

from maestro_cli import display as plots
from maestro_cli.cli.view import pedal_intervals
from maestro_cli.display import PEDAL_COLOR
from maestro_cli.symbolic.notes import make_notes


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int64)


def has_colour(image, hex_colour, tolerance=12):
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return bool((np.abs(image - rgb).max(axis=-1) <= tolerance).any())


def test_pedal_intervals():
    times, values = [0.0, 1.0, 1.5, 2.0, 3.0, 4.0], [0, 100, 120, 10, 64, 63]
    assert pedal_intervals(times, values, 9.0) == [(1.0, 2.0), (3.0, 4.0)]
    assert pedal_intervals([2.0, 1.0], [127, 0], 5.0) == [(2.0, 5.0)]  # never lifted: until the end
    assert pedal_intervals([], [], 5.0) == []


def test_view_writes_piano_roll(tmp_path):
    midi = write_midi(tmp_path / "piece.mid", [(48 + i % 36, i * 0.1, i * 0.1 + 0.4, 10 + i) for i in range(100)],
                      pedal=[(2.0, 127), (5.0, 0)])
    result = run_maestro("view", str(midi), cwd=tmp_path)
    assert result.code == 0, result.stderr
    target = tmp_path / "piece.png"
    assert result.stdout.strip() == str(target)
    image = pixels(target)
    assert image.shape == (500, 1200, 3) and image.var() > 0
    assert has_colour(image, PEDAL_COLOR, tolerance=40)  # the pedal band (alpha-blended on white)
    again = run_maestro("view", str(midi), cwd=tmp_path)
    assert again.code == 1 and "output exists; use --overwrite" in again.stderr


def test_view_options_and_json(tmp_path):
    midi = write_midi(tmp_path / "p.mid", [(60, 0.0, 1.0, 100), (67, 2.0, 3.0, 30), (72, 8.0, 9.0, 60)])
    out = tmp_path / "roll.png"
    result = run_maestro("view", str(midi), "-o", str(out), "--start", "1.5", "--end", "4", "--width", "8",
                         "--height", "3", "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"path": str(out), "notes": 1, "start_s": 1.5, "end_s": 4.0}
    image = pixels(out)
    assert image.shape == (300, 800, 3) and image.var() > 0
    assert not has_colour(image, PEDAL_COLOR)  # no pedal in this file
    bad = run_maestro("view", str(midi), "-o", str(tmp_path / "x.png"), "--start", "4", "--end", "2")
    assert bad.code == 2 and "--end must be after --start" in bad.stderr
    empty = run_maestro("view", str(midi), "-o", str(tmp_path / "y.png"), "--start", "20")
    assert empty.code == 1 and "no notes between" in empty.stderr


def test_view_rejects_bad_input(tmp_path):
    missing = run_maestro("view", str(tmp_path / "nope.mid"))
    assert missing.code == 1 and missing.stderr.strip() == f"error: {tmp_path / 'nope.mid'}: no such file"
    text = tmp_path / "notes.mid"
    text.write_text("not midi")
    broken = run_maestro("view", str(text), "-o", str(tmp_path / "n.png"))
    assert broken.code == 1 and broken.stderr.startswith(f"error: {text}:")


def test_velocity_colours_differ(tmp_path):
    """Soft and loud notes take the colour map's colours for their velocities."""
    import matplotlib

    target = plots.piano_roll(tmp_path / "v.png", make_notes([40, 80], [0.0, 0.0], [2.0, 2.0], [5, 125]),
                              width=4, height=4)
    column = pixels(target)[:, 400 // 3]  # crosses both bars, not the colour bar
    cmap = matplotlib.colormaps[plots.VELOCITY_CMAP]
    for velocity in (5, 125):
        rgb = np.round(np.array(cmap(velocity / 127)[:3]) * 255)
        assert (np.abs(column - rgb).max(axis=-1) <= 3).sum() >= 3, velocity
