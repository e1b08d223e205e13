"""What runs inside an executor's worker: the backend built once, then one item after another."""

from __future__ import annotations

import os
import pickle
import time
from typing import Any

from maestro_cli.protocols import BatchJob, ItemResult


class SetupError(Exception):
    """``job.setup()`` failed in a worker: the whole batch stops with ``error``."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error

    def __reduce__(self):
        return SetupError, (self.error,)


def portable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling (to cross a process boundary), else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 - any unpicklable exception becomes its text
        return RuntimeError(f"{type(error).__name__}: {error}")


class Worker:
    """Holds the state ``job.setup()`` built (or the error it raised) and runs ``job.work`` on items."""

    def __init__(self, job: BatchJob, *, catch_setup: bool = True):
        self.job = job
        self.state: Any = None
        self.setup_error: BaseException | None = None
        try:
            self.state = job.setup()
        except Exception as exc:  # noqa: BLE001 - reported to the command with the first item
            if not catch_setup:
                raise
            self.setup_error = portable(exc)

    def __call__(self, item: Any, *, remote: bool = True) -> ItemResult:
        """Run one item; an exception becomes the result's ``error`` (made picklable when ``remote``)."""
        if self.setup_error is not None:
            return ItemResult(item, error=SetupError(self.setup_error))
        start = time.perf_counter()
        try:
            value = self.job.work(self.state, item)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
            if os.environ.get("MAESTRO_DEBUG") and not remote:
                raise
            return ItemResult(item, error=portable(exc) if remote else exc, seconds=time.perf_counter() - start)
        return ItemResult(item, value, seconds=time.perf_counter() - start)


def raise_setup_error(result: ItemResult) -> ItemResult:
    """Raise the worker's setup error (it concerns the whole batch); otherwise return ``result``."""
    if isinstance(result.error, SetupError):
        raise result.error.error
    return result
