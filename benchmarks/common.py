"""What the benchmarks share: the data folders, timing, peak memory, tables and the one JSON line.

A benchmark is one script per question. It prints rich tables (on stderr, or on stdout where its tables are its
results) and ends with one JSON line on stdout, ``{"benchmark": NAME, ...}`` (:func:`emit`). Scripts import this
module as ``common``: run as ``python benchmarks/NAME.py``, their own folder comes first on ``sys.path``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
#: The ``maestro`` command of this interpreter (start-up included in what it times).
MAESTRO = [sys.executable, "-m", "maestro_cli"]

# Folders of the shared data (what each holds: <shared>/PROVENANCE.md).
MAESTRO_MIDI = "maestro-v2.0.0-midi"  # the v2 MIDI release, with the v3 metadata beside
MAESTRO_EXCERPT = "maestro-audio-excerpt"
MAPS = "maps-disklavier"  # flac/, tsv/, a-maps/
ASAP = "asap-sample"
VIENNA = "vienna4x22"
CHOPIN = "synctoolbox-chopin/data_music"


# --- data -------------------------------------------------------------------------------------------------------

def shared_data() -> Path:
    """The shared data folder: ``$MAESTRO_SHARED_DATA``, else ``../shared/data`` beside the repository."""
    return Path(os.environ.get("MAESTRO_SHARED_DATA") or REPO.parent / "shared" / "data")


def maestro_test_rows(shared: Path, version: str = "v2") -> list[dict]:
    """The test-split rows of the MAESTRO ``version`` metadata CSV, in its order."""
    from maestro_cli.data.maestro import read_metadata

    return [row for row in read_metadata(shared / MAESTRO_MIDI / f"maestro-{version}.0.0.csv")
            if row["split"] == "test"]


def maestro_excerpts(shared: Path, folder: Path, pieces: int, seconds: float) -> list[Path]:
    """The first ``seconds`` (0: all) of the first ``pieces`` v2 test-split MIDI files, written into the new
    ``folder``; their paths, sorted."""
    import symusic

    folder.mkdir(parents=True)
    for row in maestro_test_rows(shared)[:pieces]:
        score = symusic.Score(str(shared / MAESTRO_MIDI / row["midi_filename"]), ttype="second")
        (score.clip(0, seconds) if seconds > 0 else score).dump_midi(str(folder / Path(row["midi_filename"]).name))
    return sorted(folder.iterdir())


def amaps_midi(maps: Path, piece: str) -> Path:
    """The A-MAPS MIDI (the performance, pedal included) of a piece in the ``maps`` folder (:data:`MAPS`), named
    with or without ``MAPS_MUS-``."""
    short = piece.removeprefix("MAPS_MUS-")
    return next((maps / "a-maps").glob(f"R_*_A_MAPS_{short}.mid"))


def asap_performances(root: Path, per_piece: int = 0) -> list[dict]:
    """Every ASAP performance MIDI with beat annotations (at most ``per_piece`` a score, 0: all): its ``name``
    (``folder/stem``), ``score`` (the MIDI score), ``midi`` and both annotation files ``score_ann``, ``perf_ann``."""
    out = []
    for score in sorted(root.rglob("midi_score.mid")):
        folder = score.parent
        performances = [perf for perf in sorted(folder.glob("*.mid"))
                        if perf.name != score.name and (folder / f"{perf.stem}_annotations.txt").is_file()]
        for perf in performances[: per_piece or None]:
            out.append({"name": str(folder.relative_to(root) / perf.stem), "score": score, "midi": perf,
                        "score_ann": folder / "midi_score_annotations.txt",
                        "perf_ann": folder / f"{perf.stem}_annotations.txt"})
    return out


# --- command line -----------------------------------------------------------------------------------------------

def shared_parent() -> argparse.ArgumentParser:
    """The argparse parent of every benchmark that reads the shared data: ``--shared``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--shared", type=Path, default=shared_data(),
                        help="the shared data folder (default: $MAESTRO_SHARED_DATA, else ../shared/data beside the "
                             "repository)")
    return parent


def argument_parser(doc: str, *, shared: bool = True) -> argparse.ArgumentParser:
    """A benchmark's parser: its docstring's first line as description, ``--shared`` unless ``shared=False``."""
    return argparse.ArgumentParser(description=doc.splitlines()[0], parents=[shared_parent()] if shared else [])


# --- timing and memory ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timing:
    """Seconds of repeated runs of one thing."""

    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)


def timed(action: Callable[[], T], clock: Callable[[], float] = time.perf_counter) -> tuple[float, T]:
    """Seconds of one call of ``action`` (wall time; ``clock=time.process_time`` for CPU) and what it returned."""
    start = clock()
    value = action()
    return clock() - start, value


def repeat(action: Callable[[], Any], runs: int = 3, warmup: int = 0,
           clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Seconds of ``runs`` calls of ``action`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        action()
    return Timing(tuple(timed(action, clock)[0] for _ in range(runs)))


@dataclass(frozen=True)
class Process:
    """What one finished subprocess took: wall and CPU (user + system) seconds and peak resident memory."""

    command: tuple[str, ...]
    returncode: int
    wall_s: float
    cpu_s: float
    peak_mb: float
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_process(command: Sequence[str], *, check: bool = False) -> Process:
    """Run ``command`` (stdin closed, output kept) and measure it alone: its own CPU time and peak RSS come from
    ``wait4``, not from this process's children totals (Linux starts a child's peak at its parent's size: call it
    from a small process). ``check``: exit with the command and its stderr on failure."""
    command = tuple(str(part) for part in command)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C: the child got it too; do not leave it behind
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
        out.seek(0)
        err.seek(0)
        result = Process(command, proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                         out.read().decode(errors="replace"), err.read().decode(errors="replace"))
    if check and not result.ok:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result


def peak_rss_mb() -> float:
    """Peak resident memory (MB) of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def isolated(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a fresh (spawned) process, so that its :func:`peak_rss_mb` is its own; ``function``
    must be importable (module level) and its arguments picklable."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def machine() -> dict:
    """The context of a timing on a shared machine: cores and 1-minute load."""
    return {"cores": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 1)}


# --- output -----------------------------------------------------------------------------------------------------

def console(*, stdout: bool = False, width: int | None = None) -> Console:
    """A rich console on stderr (progress, tables), or on stdout where a script's tables are its results."""
    return Console(file=sys.stdout if stdout else sys.stderr, width=width)


def table(title: str, columns: Iterable[str], rows: Iterable[Sequence[Any]] = (), *, left: int = 1,
          caption: str | None = None) -> Table:
    """A rich table: the first ``left`` columns (labels) left-aligned, the others (figures) right-aligned; cells
    are shown with ``str``."""
    out = Table(title=title, caption=caption)
    for number, column in enumerate(columns):
        out.add_column(column, justify="left" if number < left else "right")
    for row in rows:
        out.add_row(*(str(cell) for cell in row))
    return out


def emit(benchmark: str, result: dict) -> None:
    """The benchmark's one JSON line on stdout: ``{"benchmark": NAME, **result}`` (numpy values as plain
    numbers and lists, paths as strings)."""
    print(json.dumps({"benchmark": benchmark, **result}, default=_plain), flush=True)


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else str(value)
