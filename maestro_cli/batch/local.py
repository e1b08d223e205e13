"""The built-in executor ``local``: one worker runs in this process; several are a process pool.

Each pool process builds the backend once (``job.setup`` in the pool's initializer) and then takes items one by
one. At most ``2 x workers`` items are in flight, so the input iterator is read only as fast as the pool works.
Workers are started with ``spawn`` (no fork of a process that holds threads or a live terminal), ignore Ctrl-C (the
command stops them) and exit on SIGTERM through ``SystemExit``, so an output in progress is never renamed into place,
and the worker process ends there instead of taking the next queued item. A worker gets SIGTERM when the command
dies, even by ``kill -9`` (``PR_SET_PDEATHSIG`` on Linux; elsewhere a thread polling the parent's pid).
"""

from __future__ import annotations

import os
import signal
import sys
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
            _stop(list(getattr(pool, "_processes", {}).values()))
        pool.shutdown(wait=True, cancel_futures=True)


_END = object()

#: Seconds a stopped worker has to unwind its item (remove its temporary file) before it is killed.
STOP_GRACE = 0.5


def _stop(processes: list[Any]) -> None:
    """SIGTERM every worker (the item in progress unwinds), then SIGKILL what is left after ``STOP_GRACE``."""
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _start(job: BatchJob, parent: int, threads: str) -> None:
    """Pool initializer: share the cores, leave Ctrl-C to the command, exit with the parent, build the backend."""
    global _worker
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit)
    if not _die_with_parent(parent):
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    _worker = Worker(job)


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds ``atomic_output``: the temporary file is removed, nothing renamed


def _die_with_parent(parent: int) -> bool:
    """Ask Linux for SIGTERM when the command dies (``prctl(PR_SET_PDEATHSIG)``); False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGTERM, 0, 0, 0) != 0:  # 1 = PR_SET_PDEATHSIG
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the command died before the request: no signal will come
        os.kill(os.getpid(), signal.SIGTERM)
    return True


def _watch_parent(parent: int) -> None:
    """Without ``PR_SET_PDEATHSIG``: a worker whose command was killed (-9) stops within a poll."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGTERM)  # unwind the item in progress
    time.sleep(STOP_GRACE)
    os._exit(1)


def _call(item: Any) -> ItemResult:
    try:
        return _worker(item)
    except SystemExit as stop:  # SIGTERM: the item's output was discarded on the way here; take no other item
        os._exit(stop.code if isinstance(stop.code, int) else 1)
