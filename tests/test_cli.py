"""The CLI contract shared by every stage: errors, exit codes, stdin paths, --json, atomic outputs."""

from __future__ import annotations

import json
import os
import subprocess

from helpers import MAESTRO, run_maestro, write_midi

from maestro_cli import __version__
from maestro_cli.errors import MaestroError
from maestro_cli.outputs import atomic_output, output_path


def test_help_lists_every_stage():
    result = run_maestro("--help")
    assert result.code == 0
    for stage in ("fetch", "data", "tokenize", "train", "generate", "render", "transcribe", "align", "report",
                  "evaluate", "plugins"):
        assert f"  {stage} " in result.stdout


def test_version():
    result = run_maestro("--version")
    assert (result.code, result.stdout.strip()) == (0, f"maestro {__version__}")


def test_missing_input_is_one_line_error_exit_1(tmp_path, toy_plugin):
    result = run_maestro("render", str(tmp_path / "nope.mid"), "--backend", "toy-sine", env=toy_plugin)
    assert result.code == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.mid'}: no such file"
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_usage_errors_exit_2(tmp_path):
    assert run_maestro("render", "x.mid", "--format", "mp3").code == 2
    assert run_maestro("render", "--no-such-flag").code == 2
    result = run_maestro("render", "x.mid", "--backend", "no-such-backend")
    assert result.code == 2 and "unknown renderer backend 'no-such-backend'" in result.stderr


def test_backend_options_take_capital_o_and_the_old_form_says_so(tmp_path):
    result = run_maestro("generate", "-o", "max_hold=3", "--seed", "1")
    assert result.code == 2
    assert result.stderr.strip() == "error: -o is the output file; backend options are given with -O (-O max_hold=3)"
    assert run_maestro("train", "transformer", "--data", ".", "-obatch_size=2").code == 2
    result = run_maestro("render", "x.mid", "-O", "no_such_key=1")
    assert result.code == 2 and "no_such_key" in result.stderr


def test_debug_shows_traceback(tmp_path):
    result = run_maestro("--debug", "render", "x.mid", "--backend", "no-such-backend")
    assert result.code != 0 and "Traceback" in result.stderr


def test_paths_from_stdin_and_json_output(tmp_path, toy_plugin):
    first = write_midi(tmp_path / "one.mid", [(60, 0, 0.5, 90)])
    second = write_midi(tmp_path / "two.mid", [(62, 0, 0.5, 90)])
    out = tmp_path / "out"
    result = run_maestro("render", "--backend", "toy-sine", "--out-dir", str(out), "--json",
                         stdin=f"{first}\n{second}\n", env=toy_plugin)
    assert result.code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["path"] for record in records] == [str(out / "one.wav"), str(out / "two.wav")]


def test_existing_output_needs_overwrite_and_batch_continues(tmp_path, toy_plugin):
    good = write_midi(tmp_path / "good.mid", [(60, 0, 0.5, 90)])
    (tmp_path / "good.wav").write_bytes(b"keep me")
    missing = tmp_path / "missing.mid"
    other = write_midi(tmp_path / "other.mid", [(64, 0, 0.5, 90)])
    result = run_maestro("render", str(good), str(missing), str(other), "--backend", "toy-sine",
                         "--out-dir", str(tmp_path), env=toy_plugin)
    assert result.code == 1
    assert (tmp_path / "good.wav").read_bytes() == b"keep me"
    assert f"error: {tmp_path / 'good.wav'}: output exists; use --overwrite to replace it" in result.stderr
    assert f"error: {missing}: no such file" in result.stderr
    assert result.stdout.strip() == str(tmp_path / "other.wav")
    again = run_maestro("render", str(good), "--backend", "toy-sine", "--out-dir", str(tmp_path), "--overwrite",
                        env=toy_plugin)
    assert again.code == 0 and (tmp_path / "good.wav").read_bytes() != b"keep me"


def test_output_file_needs_single_input(tmp_path):
    result = run_maestro("render", "a.mid", "b.mid", "-o", str(tmp_path / "x.wav"))
    assert result.code == 2 and "-o FILE takes exactly one input" in result.stderr


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "result.bin"
    try:
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [target]


def test_output_path_refuses_to_overwrite(tmp_path):
    (tmp_path / "piece.wav").write_text("x")
    try:
        output_path(tmp_path / "piece.mid", ".wav", tmp_path)
    except MaestroError as exc:
        assert "output exists" in str(exc)
    else:
        raise AssertionError("existing output was not refused")
    assert output_path(tmp_path / "piece.mid", ".wav", tmp_path, overwrite=True) == tmp_path / "piece.wav"


def test_closed_stdout_pipe_exits_quietly():
    import os
    import subprocess

    from helpers import MAESTRO

    read_end, write_end = os.pipe()
    os.close(read_end)  # like `maestro plugins --json | head -n 0`: the reader is gone before anything is written
    proc = subprocess.run([str(MAESTRO), "plugins", "--json"], stdout=write_end, stderr=subprocess.PIPE, text=True,
                          timeout=60)
    os.close(write_end)
    assert proc.returncode == 1
    assert proc.stderr == ""


def test_closed_stdin_is_no_input(tmp_path):
    """Under cron or nohup stdin may be closed (sys.stdin is None): a stage that looks at it sees no input."""
    result = subprocess.run([str(MAESTRO), "evaluate", "generation", "--dataset", str(tmp_path)],
                            capture_output=True, text=True, preexec_fn=lambda: os.close(0), timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "error: no input given (name files or pipe paths on stdin)"
