"""Where Ray's time goes on one machine: per-item CPU seconds in Ray's actors against the local pool's workers,
Ray's import, start and shutdown, and the CPU seconds of every process Ray starts.

Input: the first ``--seconds`` (0: all) of the first ``--pieces`` MAESTRO v2 test pieces, rendered to 16 kHz mono
WAV once. The batch job is the one ``maestro transcribe -b onsets-frames`` builds (``--stage render``: the one of
``maestro render --sample-rate 16000 -O channels=1``), run through the executors' Python API with ``--jobs``
workers: the local pool, then ``--executor ray`` on a local instance, alternating ``--rounds`` times. Each item's work
is wrapped to record, in its worker, the CPU seconds of the whole worker process and of the thread that runs the
item, the wall seconds, and the context switches. A thread of this process reads ``/proc`` every 0.2 s for the CPU
seconds of every process under it (the pool's workers; Ray's raylet, GCS, dashboard, agents, monitors, idle
workers and actors), grouped by role, over the whole run and over the items' window (first item started to last
finished). CPU seconds are what the figures compare: a loaded machine stretches wall time, not CPU time. On an idle
machine with as many busy workers as cores, every CPU second another process takes in the items' window delays an
item by about that much (Ray's workers run at nice 15, so they always give way).

Run (from the worktree, its plugin copy first on the path):
``PYTHONPATH=.:plugins/maestro-ray .venv/bin/python benchmarks/ray_overhead.py [--pieces 8] [--seconds 60]
[--rounds 2] [--jobs 2] [--stage transcribe]``. Prints a table per executor on stderr and one JSON line on stdout.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

from common import MAESTRO, argument_parser, console, emit, machine, maestro_excerpts, run_process, table

#: Process roles by a piece of their command line, first match wins.
ROLES = [("gcs_server", "gcs_server"), ("/raylet", "raylet"), ("dashboard/dashboard.py", "dashboard head"),
         ("DashboardAgent", "dashboard agent"), ("dashboard/agent.py", "dashboard agent"),
         ("RuntimeEnvAgent", "runtime env agent"), ("runtime_env/agent", "runtime env agent"),
         ("log_monitor", "log monitor"), ("autoscaler/_private/monitor", "autoscaler monitor"),
         ("ray::IDLE", "idle ray workers"), ("default_worker.py", "idle ray workers"), ("ray::", "workers"),
         ("multiprocessing", "workers")]


def measured(work, state, item):
    """Run ``work(state, item)``; return its CPU seconds (process, thread), wall seconds, epoch times, switches."""
    usage, process, thread, wall, start = (resource.getrusage(resource.RUSAGE_SELF), time.process_time(),
                                           time.thread_time(), time.perf_counter(), time.time())
    work(state, item)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"item": item[0].name, "pid": os.getpid(), "process_s": time.process_time() - process,
            "thread_s": time.thread_time() - thread, "wall_s": time.perf_counter() - wall, "start": start,
            "end": time.time(), "voluntary_switches": after.ru_nvcsw - usage.ru_nvcsw,
            "involuntary_switches": after.ru_nivcsw - usage.ru_nivcsw, "threads": _torch_threads()}


def _torch_threads() -> str:
    torch = sys.modules.get("torch")
    return f"{torch.get_num_threads()}/{torch.get_num_interop_threads()}" if torch else "-"


class Sampler(threading.Thread):
    """CPU seconds of every process under this one, by role, every ``period`` s (dead processes keep their last)."""

    def __init__(self, period: float = 0.2):
        super().__init__(daemon=True)
        self.period, self.root, self.tick = period, os.getpid(), os.sysconf("SC_CLK_TCK")
        self.last: dict[int, tuple[str, float]] = {}
        self.series: list[tuple[float, dict[str, float]]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.sample()
            self.stopped.wait(self.period)
        self.sample()

    def stop(self) -> None:
        self.stopped.set()
        self.join()

    def sample(self) -> None:
        children: dict[int, list[int]] = {}
        stats: dict[int, tuple[str, float]] = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
                command = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(name))
            stats[int(name)] = (command, (int(fields[11]) + int(fields[12])) / self.tick)
        stack = [self.root]
        while stack:
            pid = stack.pop()
            stack += children.get(pid, [])
            if pid in stats:
                command, cpu = stats[pid]
                if pid == self.root:
                    role = "driver"
                elif not command.strip() and pid in self.last:  # a process that has exited keeps its role
                    role = self.last[pid][0]
                else:  # the latest role: an idle Ray worker that becomes an actor counts as a worker
                    role = next((role for key, role in ROLES if key in command), "other")
                self.last[pid] = (role, cpu)
        totals: dict[str, float] = {}
        for role, cpu in self.last.values():
            totals[role] = totals.get(role, 0.0) + cpu
        self.series.append((time.time(), totals))

    def between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds by role from the last sample before ``start`` to the first after ``end``."""
        before = max((s for s in self.series if s[0] <= start), key=lambda s: s[0], default=self.series[0])[1]
        after = min((s for s in self.series if s[0] >= end), key=lambda s: s[0], default=self.series[-1])[1]
        return {role: after.get(role, 0.0) - before.get(role, 0.0) for role in after}


def render_inputs(shared: Path, folder: Path, pieces: int, seconds: float) -> Path:
    """The first ``seconds`` of ``pieces`` test-split MIDI files, rendered to 16 kHz mono WAV; the WAV folder."""
    maestro_excerpts(shared, folder / "midi", pieces, seconds)
    run_process([*MAESTRO, "render", folder / "midi", "--out-dir", folder / "wav", "--sample-rate", "16000", "-O",
                 "channels=1", "--jobs", "1"], check=True)
    return folder / "wav"


def make_job(stage: str, transcriber: str):
    from maestro_cli.cli.batch import backend_job
    from maestro_cli.protocols import BatchJob

    if stage == "render":
        from maestro_cli.cli.render import render_one

        job = backend_job("renderer", None, ["channels=1"], partial(render_one, sample_rate=16000,
                                                                     audio_format="wav", soundfont=None))
    else:
        from maestro_cli.cli.transcribe import transcribe_one

        job = backend_job("transcriber", transcriber, [], transcribe_one)
    return BatchJob(job.setup, partial(measured, job.work))


def run_once(executor_name: str, job, inputs: list[Path], out: Path, jobs: int, stage: str) -> dict:
    """One batch through an executor: per-item records, CPU by role before, during and after the items' window,
    and (Ray) the import, ``ray.init`` and ``ray.shutdown`` timed."""
    from maestro_cli.registry import get_backend

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    suffix = ".wav" if stage == "render" else ".mid"
    items = [(path, (out / (path.stem + suffix),)) for path in inputs]
    timings: dict[str, float] = {}
    sampler = Sampler()
    sampler.start()
    start = time.time()
    executor = get_backend("executor", executor_name).create([])
    restore = _time_ray(timings) if executor_name == "ray" else None
    results = []
    try:
        for result in executor.run(job, items, jobs):
            if result.error is not None:
                raise SystemExit(f"{result.item[0]}: {result.error}")
            results.append(result.value)
    finally:
        if restore:
            restore()
    end = time.time()
    sampler.stop()
    first, last = min(r["start"] for r in results), max(r["end"] for r in results)
    phases = {"before": (start, first), "during": (first, last), "after": (last, end)}
    return {"executor": executor_name, "items": results, "jobs": jobs,
            "wall_s": {name: b - a for name, (a, b) in phases.items()},
            "cpu": {name: sampler.between(a, b) for name, (a, b) in phases.items()}, **timings}


def _time_ray(timings: dict[str, float]):
    """Time ``import ray`` (if not yet imported), ``ray.init`` and ``ray.shutdown``; return the undo."""
    if "ray" not in sys.modules:
        start = time.perf_counter()
        import ray

        timings["import_s"] = time.perf_counter() - start
    import ray

    originals = {"init": ray.init, "shutdown": ray.shutdown}

    def timed(name):
        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return originals[name](*args, **kwargs)
            finally:
                timings[f"{name}_s"] = time.perf_counter() - start
        return call

    for name in originals:
        setattr(ray, name, timed(name))
    return lambda: [setattr(ray, name, function) for name, function in originals.items()]


def summary(runs: list[dict]) -> dict:
    """Per executor, medians over rounds: the items' CPU and wall seconds, CPU seconds by role and phase (before the
    first item, during the items, after the last), the phases' wall seconds, Ray's timed calls."""
    def median(values):
        return round(statistics.median(values), 3) if values else None

    out: dict = {"rounds": len(runs)}
    for key in ("process_s", "thread_s", "wall_s"):
        out[f"items_{key}"] = median([sum(item[key] for item in run["items"]) for run in runs])
    out["items_process_s_by_round"] = [round(sum(item["process_s"] for item in run["items"]), 3) for run in runs]
    out["items_voluntary_switches"] = median([sum(i["voluntary_switches"] for i in run["items"]) for run in runs])
    out["torch_threads"] = sorted({item["threads"] for run in runs for item in run["items"]})
    roles = sorted({role for run in runs for phase in run["cpu"].values() for role in phase})
    out["cpu"] = {phase: {role: median([run["cpu"][phase].get(role, 0.0) for run in runs]) for role in roles}
                  for phase in ("before", "during", "after")}
    # CPU that other processes took while the workers ran items: on an idle machine with a busy worker per core,
    # the items wait about that long in all (per worker: divided by the workers)
    out["others_during_items_s"] = median([sum(cpu for role, cpu in run["cpu"]["during"].items() if role != "workers")
                                           for run in runs])
    out["others_share_of_items"] = round(out["others_during_items_s"] / out["items_process_s"], 4)
    out["phase_wall_s"] = {phase: median([run["wall_s"][phase] for run in runs]) for phase in ("before", "during",
                                                                                                 "after")}
    for key in ("import_s", "init_s", "shutdown_s"):
        if any(key in run for run in runs):
            out[key] = median([run[key] for run in runs if key in run])
    return out


def paired_ratio(pool: list[dict], ray: list[dict]) -> dict:
    """Each item's CPU seconds in Ray over the pool's (medians over rounds): the median and the geometric mean."""
    def per_item(runs):
        seconds: dict[str, list[float]] = {}
        for run in runs:
            for item in run["items"]:
                seconds.setdefault(item["item"], []).append(item["process_s"])
        return {name: statistics.median(values) for name, values in seconds.items()}

    a, b = per_item(pool), per_item(ray)
    ratios = [b[name] / a[name] for name in a if name in b and a[name] > 0]
    return {"items": len(ratios), "median": round(statistics.median(ratios), 4),
            "geometric_mean": round(statistics.geometric_mean(ratios), 4)}


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--pieces", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of each piece (0: whole pieces)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--stage", choices=["transcribe", "render"], default="transcribe")
    parser.add_argument("--transcriber", default="onsets-frames")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="maestro-ray-overhead-"))
    try:
        wav = render_inputs(args.shared, work, args.pieces, args.seconds)
        inputs = sorted(wav.glob("*.wav")) if args.stage == "transcribe" else sorted((work / "midi").iterdir())
        job = make_job(args.stage, args.transcriber)
        runs: dict[str, list[dict]] = {"local": [], "ray": []}
        for _ in range(args.rounds):
            for name in runs:
                runs[name].append(run_once(name, job, inputs, work / f"out-{name}", args.jobs, args.stage))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {name: summary(group) for name, group in runs.items()}
    results["ray"]["item_cpu_ratio_to_pool"] = paired_ratio(runs["local"], runs["ray"])
    context = machine()
    report(results, args, context)
    emit("ray_overhead", {"stage": args.stage, "pieces": len(inputs), "seconds_each": args.seconds, "jobs": args.jobs,
                          **context, "executors": results})


def report(results: dict, args, context: dict) -> None:
    local, ray = results["local"], results["ray"]
    out = table(f"{args.stage}: {args.pieces} pieces x {args.seconds:g} s, --jobs {args.jobs}, {context['cores']} "
                f"cores, load {context['load_1min']:.1f}; CPU seconds, medians of {args.rounds} rounds",
                ("", "local pool", "ray", "ray - pool"))

    def row(label, a, b):
        out.add_row(label, _fmt(a), _fmt(b), _fmt(b - a) if a is not None and b is not None else "")

    row("items: CPU s of the worker process", local["items_process_s"], ray["items_process_s"])
    row("items: CPU s of the thread running them", local["items_thread_s"], ray["items_thread_s"])
    ratio = ray["item_cpu_ratio_to_pool"]
    out.add_row("items: CPU in Ray / in the pool, item by item", "", f"median {ratio['median']:.3f}",
                f"geo. mean {ratio['geometric_mean']:.3f}")
    row("items: voluntary context switches", local["items_voluntary_switches"], ray["items_voluntary_switches"])
    row("other processes while items ran, CPU s", local["others_during_items_s"], ray["others_during_items_s"])
    row("  ... as a share of the items' CPU", local["others_share_of_items"], ray["others_share_of_items"])
    for phase, label in (("before", "before the first item"), ("during", "while items ran"),
                         ("after", "after the last item")):
        for role in sorted(set(local["cpu"][phase]) | set(ray["cpu"][phase])):
            a, b = local["cpu"][phase].get(role, 0.0), ray["cpu"][phase].get(role, 0.0)
            if a or b:
                row(f"{label}: {role}", a, b)
    out.add_row("torch threads intra/inter-op", ", ".join(local["torch_threads"]),
                ", ".join(ray["torch_threads"]), "")
    progress = console(width=120)
    progress.print(out)
    progress.print("Wall seconds (indicative only on a loaded machine): before the first item "
                   f"{local['phase_wall_s']['before']:.2f} (pool) / {ray['phase_wall_s']['before']:.2f} (ray), "
                   f"after the last {local['phase_wall_s']['after']:.2f} / {ray['phase_wall_s']['after']:.2f}; "
                   + ", ".join(f"ray {key[:-2]} {ray[key]:.2f}" for key in ("import_s", "init_s", "shutdown_s")
                               if ray.get(key) is not None))


def _fmt(value) -> str:
    return "" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
