"""Batch stages: --jobs, executors (local pool, Ray), folders and manifests, --manifest, --skip-existing."""

from __future__ import annotations

import csv
import json
import operator
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import MAESTRO, run_maestro, write_midi

from maestro_cli.batch.local import IN_FLIGHT_PER_WORKER, LocalExecutor
from maestro_cli.protocols import BatchJob


def toy_midis(folder: Path, n: int = 6) -> list[Path]:
    """``n`` short, different piano pieces (two seconds, a few notes each)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_midi(folder / f"piece{i}.mid", [(48 + i + 3 * k, 0.25 * k, 0.25 * k + 0.5, 60 + 5 * k)
                                                  for k in range(6)]) for i in range(n)]


def excerpts(maestro_root: Path, folder: Path, n: int, seconds: float) -> list[Path]:
    """The first ``seconds`` of ``n`` MAESTRO test pieces."""
    import symusic

    folder.mkdir(parents=True, exist_ok=True)
    rows = [row for row in csv.DictReader((maestro_root / "maestro-v2.0.0.csv").open()) if row["split"] == "test"]
    paths = []
    for row in rows[:n]:
        score = symusic.Score(str(maestro_root / row["midi_filename"]), ttype="second").clip(0, seconds)
        paths.append(folder / Path(row["midi_filename"]).name)
        score.dump_midi(str(paths[-1]))
    return paths


def outputs(folder: Path) -> list[Path]:
    """Finished outputs (temporary files are hidden: ``.<stem>.<random>.tmp.wav``)."""
    return sorted(p for p in folder.glob("*.wav") if not p.name.startswith(".")) if folder.is_dir() else []


def records(manifest: Path) -> dict[str, dict]:
    return {Path(line["input"]).name: line for line in map(json.loads, manifest.read_text().splitlines())}


@pytest.mark.slow
def test_jobs_2_gives_byte_identical_outputs_to_jobs_1(tmp_path):
    toy_midis(tmp_path / "in")
    one = run_maestro("render", str(tmp_path / "in"), "--out-dir", str(tmp_path / "one"), "--sample-rate", "16000")
    two = run_maestro("render", str(tmp_path / "in"), "--out-dir", str(tmp_path / "two"), "--sample-rate", "16000",
                      "--jobs", "2", "--manifest", str(tmp_path / "m.jsonl"))
    assert one.code == 0 and two.code == 0, one.stderr + two.stderr
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == [f"piece{i}.wav" for i in range(6)] == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert one.stdout.splitlines() == [str(tmp_path / "one" / name) for name in names]  # --jobs 1: input order
    assert sorted(two.stdout.splitlines()) == [str(tmp_path / "two" / name) for name in names]
    assert {r["status"] for r in records(tmp_path / "m.jsonl").values()} == {"ok"}


def test_a_corrupt_file_is_reported_and_the_others_finish(tmp_path):
    toy_midis(tmp_path / "in", 5)
    (tmp_path / "in" / "broken.mid").write_bytes(b"MThd this is not a MIDI file")
    result = run_maestro("render", str(tmp_path / "in"), "--out-dir", str(tmp_path / "out"), "--jobs", "2",
                         "--sample-rate", "16000", "--manifest", str(tmp_path / "m.jsonl"))
    assert result.code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {tmp_path / 'in' / 'broken.mid'}: ")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"piece{i}.wav" for i in range(5)]
    assert len(result.stdout.splitlines()) == 5
    lines = records(tmp_path / "m.jsonl")
    assert lines["broken.mid"]["status"] == "failed" and lines["broken.mid"]["error"]
    assert [lines[f"piece{i}.mid"]["status"] for i in range(5)] == ["ok"] * 5


def start_render(tmp_path: Path, maestro_root: Path, *extra: str) -> tuple[subprocess.Popen, list[Path], Path]:
    """``render`` of 12 MAESTRO excerpts with ``--jobs 2``, running; returned once two outputs exist."""
    inputs = excerpts(maestro_root, tmp_path / "in", 12, 20.0)
    out = tmp_path / "out"
    proc = subprocess.Popen([str(MAESTRO), "render", str(tmp_path / "in"), "--out-dir", str(out), "--jobs", "2",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(outputs(out)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the batch ended before it could be interrupted"
    return proc, inputs, out


def children(pid: int) -> list[int]:
    return [int(child) for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                   text=True).stdout.split()]


def alive(pids: list[int]) -> list[int]:
    """The processes of ``pids`` still running (a zombie waiting for its new parent to reap it is gone)."""
    def running(pid: int) -> bool:
        try:
            return "(zombie)" not in Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False
    return [pid for pid in pids if running(pid)]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_batch_stops_at_once_says_how_far_it_got_and_resumes(tmp_path, maestro_root, signum):
    """docs/batch.md: no item starts after the signal, items in flight are cancelled, the workers are gone within a
    second, finished outputs are whole, one summary line on stderr, exit 128 + signal;
    --skip-existing redoes nothing."""
    proc, inputs, out = start_render(tmp_path, maestro_root)
    workers = children(proc.pid)
    assert workers
    proc.send_signal(signum)
    signalled = time.monotonic()
    stdout, stderr = proc.communicate(timeout=60)
    while alive(workers) and time.monotonic() < signalled + 5:
        time.sleep(0.02)
    assert not alive(workers) and time.monotonic() - signalled < 1.0
    assert proc.returncode == 128 + signum, (proc.returncode, stderr)
    summary = stderr.strip().splitlines()
    printed = stdout.split()
    name = signal.Signals(signum).name
    assert summary == [f"interrupted ({name}): {len(printed)} of 12 inputs finished, 0 failed, {12 - len(printed)} "
                       "not done; rerun the same command with --skip-existing to do the rest"]
    done = outputs(out)
    time.sleep(1.0)
    assert outputs(out) == done  # nothing written after the command ended
    # a worker may have finished the item the command had not printed yet, never one started after the signal
    assert set(printed) <= {str(path) for path in done} and len(done) <= len(printed) + 2 < len(inputs)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    import soundfile

    for path in done:  # what exists is whole
        assert soundfile.info(str(path)).duration > 19.0
    mtimes = {path.name: path.stat().st_mtime_ns for path in done}
    again = run_maestro("render", str(tmp_path / "in"), "--out-dir", str(out), "--jobs", "2", "--skip-existing",
                        "--manifest", str(tmp_path / "m.jsonl"))
    assert again.code == 0, again.stderr
    assert len(outputs(out)) == len(inputs) and len(again.stdout.splitlines()) == len(inputs)
    assert {name: (out / name).stat().st_mtime_ns for name in mtimes} == mtimes  # nothing redone
    status = {Path(r["output"]).name: r["status"] for r in records(tmp_path / "m.jsonl").values()}
    assert {name for name, s in status.items() if s == "skipped"} == set(mtimes)
    assert sum(s == "ok" for s in status.values()) == len(inputs) - len(mtimes)


@pytest.mark.slow
def test_workers_of_a_killed_batch_stop_within_a_second_and_write_nothing(tmp_path, maestro_root):
    """``kill -9`` of the command: its workers notice (parent-death signal) and stop instead of finishing the queue."""
    proc, inputs, out = start_render(tmp_path, maestro_root)
    workers = children(proc.pid)
    proc.kill()
    killed = time.time()
    proc.communicate(timeout=60)
    while alive(workers) and time.time() < killed + 5:
        time.sleep(0.02)
    assert not alive(workers) and time.time() - killed < 1.0
    time.sleep(1.0)
    late = [path.name for path in outputs(out) if path.stat().st_mtime > killed + 0.2]
    assert not late and len(outputs(out)) < len(inputs)


def test_existing_outputs_fail_without_skip_existing_and_flags_exclude_each_other(tmp_path):
    toy_midis(tmp_path / "in", 2)
    first = run_maestro("render", str(tmp_path / "in"), "--out-dir", str(tmp_path), "--sample-rate", "16000")
    assert first.code == 0
    again = run_maestro("render", str(tmp_path / "in"), "--out-dir", str(tmp_path), "--sample-rate", "16000")
    assert again.code == 1 and again.stderr.count("output exists; use --overwrite to replace it") == 2
    both = run_maestro("render", str(tmp_path / "in"), "--out-dir", str(tmp_path), "--skip-existing", "--overwrite")
    assert both.code == 2 and "either --skip-existing or --overwrite" in both.stderr


@pytest.mark.slow
def test_folder_text_and_jsonl_manifests_and_output_collisions(tmp_path):
    pieces = toy_midis(tmp_path / "in", 3)
    (tmp_path / "list.txt").write_text("# three pieces\nin/piece0.mid\n\nin/piece1.mid\n" + f"{pieces[2]}\n")
    (tmp_path / "list.jsonl").write_text("".join(json.dumps({"path": str(p)}) + "\n" for p in pieces[:2]))
    text = run_maestro("tokenize", str(tmp_path / "list.txt"), "--out-dir", str(tmp_path / "t"), "--jobs", "2")
    assert text.code == 0, text.stderr
    assert sorted(Path(line).name for line in text.stdout.split()) == [f"piece{i}.tokens.npz" for i in range(3)]
    lines = run_maestro("tokenize", str(tmp_path / "list.jsonl"), "--out-dir", str(tmp_path / "j"))
    assert lines.code == 0 and len(lines.stdout.split()) == 2
    decoded = run_maestro("tokenize", "--decode", str(tmp_path / "t"), "--out-dir", str(tmp_path / "d"))
    assert decoded.code == 0 and sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        f"piece{i}.mid" for i in range(3)]
    (tmp_path / "in" / "sub").mkdir()
    write_midi(tmp_path / "in" / "sub" / "piece0.mid", [(60, 0, 1, 80)])
    clash = run_maestro("render", str(tmp_path / "in"), "--out-dir", str(tmp_path / "r"))
    assert clash.code == 2 and "would both write" in clash.stderr and not (tmp_path / "r").exists()


def test_the_local_pool_keeps_a_bounded_number_of_items_in_flight():
    pulled = 0

    def items():
        nonlocal pulled
        for i in range(40):
            pulled += 1
            yield i

    seen = []
    for result in LocalExecutor().run(BatchJob(int, operator.add), items(), workers=2):
        assert pulled - len(seen) <= IN_FLIGHT_PER_WORKER * 2
        seen.append(result.value)
    assert sorted(seen) == list(range(40))


@pytest.mark.slow
def test_the_ray_executor_runs_a_small_batch_on_a_local_instance(tmp_path):
    pytest.importorskip("ray", reason="the maestro-ray plugin's dependency ray is not installed")
    toy_midis(tmp_path / "in", 3)
    reference = run_maestro("render", str(tmp_path / "in"), "--out-dir", str(tmp_path / "one"), "--sample-rate",
                            "16000")
    result = run_maestro("render", str(tmp_path / "in"), "--out-dir", str(tmp_path / "ray"), "--sample-rate", "16000",
                         "--executor", "ray", "-O", "num_cpus=1", "--manifest", str(tmp_path / "m.jsonl"),
                         env={"RAY_ADDRESS": ""})
    if result.code != 0 and "cannot start or reach Ray" in result.stderr:
        pytest.skip(f"Ray cannot start on this machine: {result.stderr.strip()[-300:]}")
    assert reference.code == 0 and result.code == 0, result.stderr
    assert sorted(result.stdout.split()) == sorted(str(tmp_path / "ray" / f"piece{i}.wav") for i in range(3))
    for i in range(3):
        assert (tmp_path / "ray" / f"piece{i}.wav").read_bytes() == (tmp_path / "one" / f"piece{i}.wav").read_bytes()
    assert [r["status"] for r in records(tmp_path / "m.jsonl").values()] == ["ok"] * 3


@pytest.mark.slow
def test_a_local_ray_instance_runs_its_actors_like_the_pools_workers(monkeypatch):
    """Nice 0 (Ray's default of 15 makes actors give way to every other process) and ``num_cpus`` OpenMP threads."""
    pytest.importorskip("ray", reason="the maestro-ray plugin's dependency ray is not installed")
    from functools import partial

    from maestro_ray import RayExecutor, RayOptions

    from maestro_cli.errors import MaestroError

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    # work(state, item) = eval(state, item): a probe any worker can unpickle without importing this module
    probe = "__import__('os').getpriority(0, 0), __import__('os').environ['OMP_NUM_THREADS']"
    try:
        results = list(RayExecutor(RayOptions(num_cpus=1)).run(BatchJob(partial(str, probe), eval), [{}, {}], 2))
    except MaestroError as exc:
        pytest.skip(f"Ray cannot start on this machine: {exc}")
    assert [result.value for result in results] == [(0, "1"), (0, "1")], [result.error for result in results]


def ray_render_until_one_output(inputs: Path, out: Path, poll: float) -> subprocess.Popen:
    """``maestro render INPUTS --executor ray`` on a local Ray instance, returned once its first output exists (or
    it ended, or 180 s passed)."""
    proc = subprocess.Popen([str(MAESTRO), "render", str(inputs), "--out-dir", str(out), "--executor", "ray"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "RAY_ADDRESS": ""})
    deadline = time.monotonic() + 180
    while len(outputs(out)) < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(poll)
    return proc


@pytest.mark.slow
def test_sigterm_stops_a_ray_batch_like_a_pool_batch(tmp_path, maestro_root):
    """Exit 143 and no stack dump: ``ray.init`` replaces the command's SIGTERM handler, the executor puts it back."""
    pytest.importorskip("ray", reason="the maestro-ray plugin's dependency ray is not installed")
    inputs = excerpts(maestro_root, tmp_path / "in", 12, 20.0)
    out = tmp_path / "out"
    proc = ray_render_until_one_output(tmp_path / "in", out, poll=0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    if "cannot start or reach Ray" in stderr:
        pytest.skip(f"Ray cannot start on this machine: {stderr.strip()[-300:]}")
    done = outputs(out)
    assert proc.returncode == 143 and 1 <= len(done) < len(inputs), (proc.returncode, len(done), stderr[-500:])
    assert "SIGTERM received" not in stderr and "interrupted (SIGTERM): " in stderr
    import soundfile

    for path in done:  # what exists is whole
        assert soundfile.info(str(path)).duration > 19.0


def test_inputs_that_cannot_be_read_fail_alone_and_the_rest_of_the_batch_runs(tmp_path):
    toy_midis(tmp_path / "in", 2)
    too_long = tmp_path / ("x" * 300 + ".mid")
    missing = tmp_path / "missing.mid"
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result = run_maestro("render", str(tmp_path / "in"), str(too_long), str(missing), "--out-dir", str(out),
                             "--sample-rate", "16000", "--jobs", jobs)
        assert result.code == 1, result.stderr
        assert sorted(result.stderr.splitlines()) == sorted([f"error: {too_long}: file name too long",
                                                             f"error: {missing}: no such file"])
        assert sorted(p.name for p in out.iterdir()) == ["piece0.wav", "piece1.wav"]


def test_binary_data_on_stdin_is_one_short_usage_error(tmp_path):
    score = toy_midis(tmp_path, 1)[0]
    garbage = bytes(range(256)) * 8 + b"\n" + b"y" * 5000
    proc = subprocess.run([str(MAESTRO), "align", "--score", str(score)], input=garbage, capture_output=True)
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and len(lines[0]) < 150, lines
    assert lines[0].startswith("error: stdin: line 1 is not a file path")


@pytest.mark.slow
def test_ray_actors_of_a_killed_batch_write_nothing_afterwards(tmp_path, maestro_root):
    """``kill -9`` of a command with a local Ray instance: its actors see the command gone (Ray itself takes about
    ten seconds) and neither finish the item in progress nor take the one queued."""
    pytest.importorskip("ray", reason="the maestro-ray plugin's dependency ray is not installed")
    inputs = excerpts(maestro_root, tmp_path / "in", 12, 120.0)
    out = tmp_path / "out"
    proc = ray_render_until_one_output(tmp_path / "in", out, poll=0.02)
    if proc.poll() is not None:
        _, stderr = proc.communicate()
        if "cannot start or reach Ray" in stderr:
            pytest.skip(f"Ray cannot start on this machine: {stderr.strip()[-300:]}")
    proc.kill()
    killed = time.time()
    proc.communicate(timeout=60)
    time.sleep(3.0)
    late = [round(path.stat().st_mtime - killed, 2) for path in outputs(out) if path.stat().st_mtime > killed + 0.3]
    assert not late and len(outputs(out)) < len(inputs), late
