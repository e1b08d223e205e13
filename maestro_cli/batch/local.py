"""The built-in executor ``local``: one worker runs in this process; several are a process pool.

Each pool process builds the backend once (``job.setup`` in the pool's initializer) and then takes items one by
one. At most ``2 x workers`` items are in flight, so the input iterator is read only as fast as the pool works.
Workers are started with ``spawn`` (no fork of a process that holds threads or a live terminal), ignore Ctrl-C (the
command stops them) and exit on SIGTERM through ``SystemExit``, so an output in progress is never renamed into place.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Iterable, Iterator

from maestro_cli.batch.worker import Worker, raise_setup_error
from maestro_cli.protocols import BatchJob, ItemResult

#: Items in flight per worker: one running, one queued, so a worker never waits for the next item.
IN_FLIGHT_PER_WORKER = 2

_worker: Worker | None = None


class LocalExecutor:
    """``--jobs 1``: items one after another in this process (the classic behaviour); ``--jobs N``: N processes."""

    def __init__(self, options: Any = None):
        self.options = options

    def run(self, job: BatchJob, items: Iterable[Any], workers: int | None = None) -> Iterator[ItemResult]:
        workers = workers or 1
        if workers == 1:
            worker = Worker(job, catch_setup=False)
            for item in items:
                yield worker(item, remote=False)
            return
        yield from _pool(job, iter(items), workers)


def _pool(job: BatchJob, items: Iterator[Any], workers: int) -> Iterator[ItemResult]:
    import multiprocessing

    threads = str(max(1, (os.cpu_count() or 1) // workers))
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
                               initargs=(job, os.getpid(), threads))
    pending: set[Future] = set()
    finished = False
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < IN_FLIGHT_PER_WORKER * workers:
                item = next(items, _END)
                if item is _END:
                    exhausted = True
                    break
                pending.add(pool.submit(_call, item))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield raise_setup_error(future.result())
        finished = True
    finally:
        if not finished:  # interrupted, or the consumer stopped: end the work in progress now
            for future in pending:
                future.cancel()
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


_END = object()


def _start(job: BatchJob, parent: int, threads: str) -> None:
    """Pool initializer: share the cores, leave Ctrl-C to the command, exit with the parent, build the backend."""
    global _worker
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    _worker = Worker(job)


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds ``atomic_output``: the temporary file is removed, nothing renamed


def _watch_parent(parent: int) -> None:
    """A worker whose command was killed (-9) stops instead of lingering."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)  # unwind the item in progress
    time.sleep(5.0)
    os._exit(1)


def _call(item: Any) -> ItemResult:
    return _worker(item)
