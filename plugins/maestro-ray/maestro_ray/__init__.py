"""maestro executor ``ray``: batch stages on a Ray cluster, one actor per worker holding the backend (its model).

``--executor ray`` starts a local Ray instance with this machine's cores (its actors at nice 0, like the local pool's
workers), or joins a cluster with ``-O address=auto`` (the node's running cluster) or ``-O address=ray://HEAD:10001``
(Ray Client). Each actor reserves ``num_cpus`` CPUs and ``num_gpus`` GPUs; ``--jobs N`` actors (default: as many as
the cluster's resources hold). At most two items per actor are in flight (``ray.wait``), so the input is read only
as fast as the cluster works. When the command stops early (Ctrl-C, SIGTERM) its actors are killed, in a cluster it
joined as well: items in flight are abandoned (their outputs never renamed into place).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from maestro_cli.errors import MaestroError
from maestro_cli.hookspecs import hookimpl
from maestro_cli.protocols import BatchJob, ItemResult

#: Items in flight per actor: one running, one queued in the actor's mailbox.
IN_FLIGHT_PER_ACTOR = 2


@dataclass
class RayOptions:
    """``-O key=value`` options of the ``ray`` executor."""

    address: str | None = None  #: None: a local instance with this machine's cores; "auto"; or "ray://host:10001"
    num_cpus: float = 1.0  #: CPUs each actor reserves (and its torch/OMP threads)
    num_gpus: float = 0.0  #: GPUs each actor reserves (fractions share a GPU)


class WorkerActor:
    """A Ray actor: builds the backend once (``job.setup``), then runs items; errors come back as results.

    On the command's machine the actor watches the command's process (``driver``: host name and pid): once it is
    gone (``kill -9``), the actor starts no other item and ends within :data:`DRIVER_POLL` seconds, the item in
    progress never renamed into place. Ray itself takes about ten seconds to notice a lost driver.
    """

    def __init__(self, job: BatchJob, threads: str, driver: tuple[str, int] | None = None):
        from maestro_cli.batch.worker import Worker

        # Set here, not through a runtime_env: an actor with a runtime_env cannot take one of the idle workers Ray
        # starts with the node and waits for a new process instead. A fresh worker has not loaded torch or OpenMP.
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = threads
        self.driver = driver[1] if driver and driver[0] == socket.gethostname() else None
        if self.driver is not None:
            threading.Thread(target=self._watch_driver, daemon=True).start()
        self.worker = Worker(job)

    def run(self, item: Any) -> ItemResult:
        if self.driver is not None and not _alive(self.driver):
            os._exit(1)  # the command is gone: take no other item
        return self.worker(item)

    def _watch_driver(self) -> None:
        while _alive(self.driver):
            time.sleep(DRIVER_POLL)
        os._exit(1)  # ends the item in progress before its output is renamed into place


#: Seconds between an actor's checks that the command that drives it is still running.
DRIVER_POLL = 0.1


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a killed one its parent has not reaped yet, a zombie, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process took the pid
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS): the signal test is all there is
        return True


class RayExecutor:
    """Runs a batch job on Ray actors with a bounded window of tasks in flight."""

    def __init__(self, options: RayOptions):
        self.options = options

    def run(self, job: BatchJob, items: Iterable[Any], workers: int | None = None) -> Iterator[ItemResult]:
        import ray

        from maestro_cli.batch.worker import raise_setup_error

        started = self._connect(ray)
        actors: list[Any] = []
        finished = False
        try:
            actors = self._actors(ray, job, workers)
            load = {actor: 0 for actor in actors}
            pending: dict[Any, tuple[Any, Any]] = {}  # object ref -> (actor, item)
            items = iter(items)
            exhausted = False
            while True:
                while not exhausted and len(pending) < IN_FLIGHT_PER_ACTOR * len(actors):
                    item = next(items, _END)
                    if item is _END:
                        exhausted = True
                        break
                    actor = min(load, key=load.get)
                    load[actor] += 1
                    pending[actor.run.remote(item)] = (actor, item)
                if not pending:
                    break
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                actor, item = pending.pop(ref)
                load[actor] -= 1
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the actor died (out of memory, node lost): report the item
                    result = ItemResult(item, error=MaestroError(f"Ray worker failed: {type(exc).__name__}: {exc}"))
                yield raise_setup_error(result)
            finished = True
        finally:
            if not finished:  # interrupted, or the consumer stopped: no item in flight may finish later
                for actor in actors:
                    ray.kill(actor, no_restart=True)
            if started:
                ray.shutdown()

    def _connect(self, ray) -> bool:
        """Join the cluster named by ``address`` (or start a local instance); True if this call started Ray."""
        if ray.is_initialized():
            return False
        if self.options.address:
            options: dict[str, Any] = {"address": self.options.address}
        else:  # a local instance: its actors are this command's work, and share the cores as the pool's workers do
            options = {"num_cpus": os.cpu_count(), "_system_config": {"worker_niceness": 0}}
            # Ray turns token authentication on for a new local instance, with a warning each time: keep it, quietly
            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        on_sigterm = signal.getsignal(signal.SIGTERM)
        try:
            ray.init(**options, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
                     configure_logging=True)
        except Exception as exc:  # noqa: BLE001 - no cluster at the address, or Ray cannot start here
            raise MaestroError(f"cannot start or reach Ray ({self.options.address or 'local'}): {exc}") from None
        if on_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_sigterm)  # the command's, which ray.init replaced with a stack dump
        if not self.options.address:
            _stop_idle_services()
        return True

    def _actors(self, ray, job: BatchJob, workers: int | None) -> list[Any]:
        cpus, gpus = self.options.num_cpus, self.options.num_gpus
        if workers is None:
            resources = ray.cluster_resources()
            fits = [resources.get("CPU", 1) / cpus] if cpus else []
            fits += [resources.get("GPU", 0) / gpus] if gpus else []
            workers = max(1, int(min(fits, default=1)))
        actor = ray.remote(num_cpus=cpus, num_gpus=gpus)(WorkerActor)
        driver = (socket.gethostname(), os.getpid())
        return [actor.remote(job, str(max(1, int(cpus))), driver) for _ in range(workers)]


_END = object()


def _stop_idle_services() -> None:
    """Kill the services of the local instance that have nothing to do for a batch (Ray 2.60's node; none if that
    changes): the autoscaler monitor (nothing to scale on one machine) and the log monitor (it polls the log folder
    ten times a second to forward workers' output, which ``log_to_driver=False`` declines).

    This also spares ``ray.shutdown()`` a second: it stops the autoscaler monitor after the GCS, and the monitor's
    SIGTERM handler then waits on the lost GCS until Ray kills it.
    """
    node = getattr(sys.modules.get("ray._private.worker"), "_global_node", None)
    for service in ("monitor", "log_monitor"):
        for info in getattr(node, "all_processes", {}).get(service, []):
            info.process.kill()
            info.process.wait()


def _ray(options: RayOptions) -> RayExecutor:
    return RayExecutor(options)


@hookimpl
def register_executors(register):
    register("ray", _ray, options=RayOptions,
             description="A Ray cluster (or a local Ray instance): one actor per worker holds the model")
