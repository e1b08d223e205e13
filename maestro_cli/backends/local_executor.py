"""Built-in executor ``local``: batch work in this process (``--jobs 1``) or a pool of N processes (``--jobs N``)."""

from __future__ import annotations

from maestro_cli.hookspecs import hookimpl


def _local(options):
    from maestro_cli.batch.local import LocalExecutor

    return LocalExecutor(options)


@hookimpl
def register_executors(register):
    register("local", _local, aliases=("process", "pool"),
             description="This machine: in-process for --jobs 1, a process pool for --jobs N", priority=100)
