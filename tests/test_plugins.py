"""Plugin wiring: entry points, failures, MAESTRO_DISABLE_PLUGINS, hook docs."""

from __future__ import annotations

import inspect
import json
import os
import re
import textwrap
from pathlib import Path

import soundfile
from helpers import REPO, run_maestro, write_midi

from maestro_cli import hookspecs


def plugins_json(**env: str) -> dict[str, dict]:
    result = run_maestro("plugins", "--json", env=env)
    assert result.code == 0, result.stderr
    return {record["name"]: record for record in map(json.loads, result.stdout.splitlines())}


def make_broken_plugin(folder: Path) -> dict[str, str]:
    """A distribution made from a temporary dist-info whose module raises on import."""
    (folder / "broken_maestro_plugin.py").write_text("raise RuntimeError('this plugin is broken on purpose')\n")
    dist_info = folder / "broken_maestro_plugin-1.2.3.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-maestro-plugin\nVersion: 1.2.3\n")
    (dist_info / "entry_points.txt").write_text("[maestro_cli]\nbroken = broken_maestro_plugin\n")
    return {"PYTHONPATH": str(folder)}


def test_installed_plugin_packages_are_listed_with_versions(toy_plugin):
    records = plugins_json(**toy_plugin)
    for name in ("maestro-basic-pitch", "maestro-synctoolbox", "maestro-fluidsynth", "toy-renderer"):
        assert records[name]["status"] == "ok"
        assert records[name]["version"] == "0.1.0"
    assert records["toy-renderer"]["backends"] == {"renderer": ["toy-sine"]}


def test_toy_plugin_is_not_installed_for_users():
    assert "toy-renderer" not in plugins_json()
    assert "toy-notes" not in run_maestro("--help").stdout


def test_entry_point_backend_is_selectable_and_validates_options(tmp_path, toy_plugin):
    midi = write_midi(tmp_path / "a4.mid", [(69, 0.0, 1.0, 100)])
    result = run_maestro("render", str(midi), "--backend", "toy-sine", "-O", "gain=0.5", "--out-dir", str(tmp_path),
                         env=toy_plugin)
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "a4.wav")
    audio, rate = soundfile.read(tmp_path / "a4.wav")
    assert rate == 44100 and abs(abs(audio).max() - 0.5) < 0.01

    bad = run_maestro("render", str(midi), "--backend", "toy-sine", "-O", "volume=2", "--out-dir", str(tmp_path),
                      env=toy_plugin)
    assert bad.code == 2
    assert "unknown option 'volume' for backend 'toy-sine'; valid options: gain (float), tail (float)" in bad.stderr


def test_plugin_command_is_added(tmp_path, toy_plugin):
    midi = write_midi(tmp_path / "three.mid", [(60, 0, 1, 80), (64, 0, 1, 80), (67, 1, 2, 80)])
    result = run_maestro("toy-notes", str(midi), env=toy_plugin)
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "3"


def test_broken_plugin_is_reported_and_does_not_break_other_commands(tmp_path, toy_plugin):
    env = make_broken_plugin(tmp_path)
    env["PYTHONPATH"] += os.pathsep + toy_plugin["PYTHONPATH"]
    records = plugins_json(**env)
    assert records["broken"]["status"] == "failed"
    assert "this plugin is broken on purpose" in records["broken"]["error"]
    assert records["toy-renderer"]["status"] == "ok"
    assert run_maestro("--help", env=env).code == 0


def test_disable_plugins_hides_them(tmp_path, toy_plugin):
    env = {**make_broken_plugin(tmp_path), "MAESTRO_DISABLE_PLUGINS": "broken, toy-renderer"}
    env["PYTHONPATH"] += os.pathsep + toy_plugin["PYTHONPATH"]
    records = plugins_json(**env)
    assert "broken" not in records and "toy-renderer" not in records
    assert "maestro-fluidsynth" in records


def test_help_does_not_import_heavy_libraries():
    code = textwrap.dedent("""
        import sys
        from maestro_cli.cli.app import main
        from maestro_cli.cli.plugins import describe
        describe()
        heavy = [m for m in ("torch", "librosa", "numba", "synctoolbox", "basic_pitch", "onnxruntime", "matplotlib")
                 if m in sys.modules]
        print(",".join(heavy))
    """)
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_hookspec_is_documented_with_its_signature():
    doc = (REPO / "docs" / "plugins.md").read_text()
    specs = [name for name, value in vars(hookspecs).items()
             if callable(value) and hasattr(value, "maestro_cli_spec")]
    assert "register_transcribers" in specs and "register_commands" in specs
    for name in specs:
        signature = f"{name}({', '.join(inspect.signature(getattr(hookspecs, name)).parameters)})"
        assert re.search(rf"^## `{re.escape(signature)}`", doc, re.MULTILINE), f"{signature} is not documented"
