"""benchmarks/common.py: the JSON line, timing, a subprocess's own CPU and peak memory, the shared-data path, tables
and the data finders on the real shared data."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, benchmark

common = benchmark("common")


def test_emit_prints_one_json_line_with_the_benchmark_first(capsys):
    common.emit("demo", {"ratio": np.float32(0.5), "counts": np.arange(3), "n": np.int64(7), "path": Path("/a/b")})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.endswith("\n")
    record = json.loads(out)
    assert list(record)[0] == "benchmark"
    assert record == {"benchmark": "demo", "ratio": 0.5, "counts": [0, 1, 2], "n": 7, "path": "/a/b"}


def test_repeat_times_a_known_sleep():
    timing = common.repeat(lambda: time.sleep(0.05), runs=3, warmup=1)
    assert len(timing.seconds) == 3
    assert 0.05 <= timing.best <= timing.median < 0.25  # a loaded machine delays a sleep, never shortens it
    seconds, value = common.timed(lambda: 42)
    assert value == 42 and 0 <= seconds < 0.1


def test_process_cpu_and_peak_memory_are_its_own():
    """Measured from a small parent, as a benchmark script is: Linux starts a child's peak at its parent's size."""
    code = "b = bytearray({mb} * 2**20); b[::4096] = b'x' * len(b[::4096]); sum(range({loops}))"
    measure = (f"import sys, json, common; c = {code!r}; "
               "runs = [common.run_process([sys.executable, '-c', c.format(mb=mb, loops=n)]) for mb, n in "
               "((200, 3 * 10**6), (1, 1))]; "
               "print(json.dumps([[r.ok, r.peak_mb, r.cpu_s, r.wall_s] for r in runs]))")
    out = subprocess.run([sys.executable, "-c", measure], cwd=REPO / "benchmarks", capture_output=True, text=True,
                         check=True)
    (big_ok, big_peak, big_cpu, big_wall), (small_ok, small_peak, small_cpu, _) = json.loads(out.stdout)
    assert big_ok and small_ok
    assert big_peak >= 200 and small_peak < 100  # not the largest child's so far
    assert big_cpu > small_cpu and big_wall >= big_cpu * 0.5


def test_failing_process_keeps_its_stderr_and_check_exits():
    command = [sys.executable, "-c", "import sys; print('partial'); sys.exit('bad input: x.mid')"]
    failed = common.run_process(command)
    assert (failed.ok, failed.returncode, failed.stdout) == (False, 1, "partial\n")
    assert "bad input: x.mid" in failed.stderr
    with pytest.raises(SystemExit, match="bad input: x.mid"):
        common.run_process(command, check=True)


def test_shared_data_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MAESTRO_SHARED_DATA", str(tmp_path))
    assert common.shared_data() == tmp_path
    assert common.argument_parser("Doc line.\nmore").parse_args([]).shared == tmp_path
    assert common.argument_parser("Doc line.").parse_args(["--shared", "/x"]).shared == Path("/x")
    monkeypatch.delenv("MAESTRO_SHARED_DATA")
    assert common.shared_data() == REPO.parent / "shared" / "data"
    with pytest.raises(SystemExit):
        common.argument_parser("Doc.", shared=False).parse_args(["--shared", "/x"])


def test_table_aligns_labels_left_and_figures_right():
    out = common.table("t", ("a", "b", "c", "d"), [(1, 2.5, "x", None)], left=2)
    assert [column.justify for column in out.columns] == ["left", "left", "right", "right"]
    assert [column._cells for column in out.columns] == [["1"], ["2.5"], ["x"], ["None"]]


def test_maestro_excerpts_and_asap_performances(shared_data, tmp_path):
    import symusic

    paths = common.maestro_excerpts(shared_data, tmp_path / "midi", 2, 1.5)
    first = common.maestro_test_rows(shared_data)[:2]
    assert [p.name for p in paths] == sorted(Path(row["midi_filename"]).name for row in first)
    for path, row in zip(paths, sorted(first, key=lambda row: Path(row["midi_filename"]).name)):
        onsets = [note.time for note in symusic.Score(str(path), ttype="second").tracks[0].notes]
        whole = symusic.Score(str(shared_data / common.MAESTRO_MIDI / row["midi_filename"])).note_num()
        assert 0 < len(onsets) < whole and max(onsets) < 1.5
    every = common.asap_performances(shared_data / common.ASAP)
    one = common.asap_performances(shared_data / common.ASAP, per_piece=1)
    assert len({r["score"] for r in one}) == len(one) == len({r["score"] for r in every}) < len(every)
    assert all(r["perf_ann"].is_file() and r["midi"].parent == r["score"].parent for r in every)
