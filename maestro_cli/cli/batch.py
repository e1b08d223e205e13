"""Batch stages: inputs from folders and manifests, outputs planned up front, work run by an executor.

Every batch stage (render, transcribe, tokenize, align) hands :func:`run_files` its inputs, a function naming each
input's outputs, and a picklable :class:`~maestro_cli.protocols.BatchJob`. The executor (``--executor``, ``--jobs``)
runs the job; this module prints each finished input's result on stdout, one ``error:`` line per failed input,
the progress bar on stderr, and the ``--manifest`` record.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import typer

from maestro_cli.batch.files import check_unique_outputs, expand_entries, input_problem, os_reason
from maestro_cli.batch.manifest import ManifestWriter
from maestro_cli.cli.io import console, emit, progress, read_inputs, report_failure
from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.outputs import check_folder
from maestro_cli.protocols import BatchJob
from maestro_cli.registry import get_backend

#: A batch input: its path, or ``(path, {key: path})``, an input with its companion files (align: its score).
Source = Path | tuple[Path, dict[str, Path]]


@dataclass
class BatchFlags:
    """The batch options every batch stage takes."""

    jobs: int | None = None
    executor: str | None = None
    manifest: Path | None = None
    skip_existing: bool = False
    overwrite: bool = False
    as_json: bool = False


def batch_inputs(inputs: list[str] | None, suffixes: Sequence[str]) -> list[Path]:
    """Paths from the arguments or stdin, folders and manifests expanded; each input once, in order."""
    return [path for path, _ in batch_entries(inputs, suffixes)]


def batch_entries(inputs: list[str] | None, suffixes: Sequence[str],
                  keys: Sequence[str] = ()) -> list[tuple[Path, dict[str, Path]]]:
    """:func:`batch_inputs`, each input with the companion paths its JSON manifest line gives under ``keys``; an input
    listed twice with the same companions is run once."""
    entries = expand_entries(read_inputs(inputs), suffixes, keys)
    if not entries:
        if inputs and len(inputs) == 1 and inputs[0] != "-":
            raise UsageError(f"no input files ({', '.join(suffixes)}) found in it", inputs[0])
        raise UsageError(f"no input files ({', '.join(suffixes)}) found in {', '.join(inputs or ['stdin'])}")
    return list({(path, tuple(sorted(fields.items()))): (path, fields) for path, fields in entries}.values())


def split_executor_options(flags: BatchFlags, options: list[str]) -> tuple[list[str], list[str]]:
    """``-O key=value`` options of the chosen executor (keys of its options dataclass), and the backend's."""
    executor = get_backend("executor", flags.executor)
    keys = {field.name for field in dataclasses.fields(executor.options)} if executor.options else set()
    mine = [option for option in options if option.split("=", 1)[0].strip().replace("-", "_") in keys]
    return [option for option in options if option not in mine], mine


def run_files(description: str, sources: Sequence[Source], plan: Callable[[Any], tuple[Path, ...]], job: BatchJob,
              flags: BatchFlags, executor_options: list[str] | None = None,
              result: Callable[[tuple[Path, ...]], Any] | None = None) -> None:
    """Run ``job`` over ``(source, plan(source))`` items; exit 1 if any failed.

    A source's companion files are recorded in the ``--manifest`` beside its ``input``.

    Outputs that exist are an error per input, replaced with ``--overwrite``, or kept with ``--skip-existing``
    (status ``skipped``; an input with only some of its outputs is redone). ``result(targets)`` is what stdout
    shows for an input (default: its first output's path), for a new and a kept output alike.
    """
    if flags.skip_existing and flags.overwrite:
        raise UsageError("use either --skip-existing or --overwrite, not both")
    result = result or (lambda targets: targets[0])
    planned = [(source, plan(source)) for source in sources]
    check_unique_outputs((_label(source), targets) for source, targets in planned)
    to_write = [targets for _, targets in planned if not (flags.skip_existing and _all_exist(targets))]
    for folder_target in {target.absolute().parent: target for targets in to_write for target in targets}.values():
        check_folder(folder_target)  # an output folder that takes no files stops the batch before any work
    executor = get_backend("executor", flags.executor).create(executor_options or [])
    manifest = ManifestWriter(flags.manifest)
    failed = 0

    def fail(source: Source, targets: tuple[Path, ...], error: BaseException, seconds: float = 0.0) -> None:
        nonlocal failed
        if isinstance(error, MaestroError) and error.exit_code == 2:
            raise error
        failed += 1
        path, fields = _split(source)
        report_failure(path, error)
        text = error.message if isinstance(error, MaestroError) else f"{type(error).__name__}: {error}"
        manifest.write(path, fields, targets, "failed", text, seconds)

    def todo() -> Iterator[tuple[Source, tuple[Path, ...]]]:
        for source, targets in planned:
            path, fields = _split(source)
            problem = next(filter(None, map(input_problem, (path, *fields.values()))), None)
            if problem is None:
                try:
                    existing = [target for target in targets if target.exists()]
                except OSError as exc:
                    problem = MaestroError(f"cannot write the output: {os_reason(exc)}", targets[0])
            if problem is not None:  # this input alone fails; the others run
                fail(source, targets, problem)
                bar.advance(task)
                continue
            if existing and not flags.overwrite:
                if flags.skip_existing and len(existing) == len(targets):
                    emit(result(targets), flags.as_json)
                    manifest.write(*_split(source), targets, "skipped")
                    counts["skipped"] += 1
                    bar.advance(task)
                    continue
                if not flags.skip_existing:
                    fail(source, targets, MaestroError("output exists; use --overwrite to replace it", existing[0]))
                    bar.advance(task)
                    continue
            yield source, targets

    counts = {"ok": 0, "skipped": 0}
    try:
        with progress("files", transient=False) as bar, _interrupts():
            task = bar.add_task(description, total=len(planned))
            with closing(executor.run(job, todo(), flags.jobs)) as results:  # closed early: workers stopped at once
                for done in results:
                    source, targets = done.item
                    if done.error is not None:
                        fail(source, targets, done.error, done.seconds)
                    else:
                        emit(result(targets), flags.as_json)
                        manifest.write(*_split(source), targets, "ok", None, done.seconds)
                        counts["ok"] += 1
                    bar.advance(task)
    except Interrupted as stop:
        done = counts["ok"] + counts["skipped"]
        console.print(f"interrupted ({signal.Signals(stop.signum).name}): {done} of {len(planned)} inputs finished, "
                      f"{failed} failed, {len(planned) - done - failed} not done; rerun the same command with "
                      "--skip-existing to do the rest", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(128 + stop.signum) from None
    finally:
        manifest.close()
    if failed:
        raise typer.Exit(1)


def _all_exist(targets: tuple[Path, ...]) -> bool:
    try:
        return all(target.exists() for target in targets)
    except OSError:  # a name too long: reported with its input
        return False


def _split(source: Source) -> tuple[Path, dict[str, Path]]:
    return source if isinstance(source, tuple) else (source, {})


def _label(source: Source) -> Path | str:
    """How a source is named in a usage error: its path, with its companion files."""
    path, fields = _split(source)
    return f"{path} (with {', '.join(f'{key} {value}' for key, value in fields.items())})" if fields else path


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM during a batch (``signum``: which)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _interrupts() -> Iterator[None]:
    """During a batch, SIGINT and SIGTERM raise :class:`Interrupted` once; a second signal while the workers are being
    stopped is ignored (stopping takes under a second)."""
    def interrupt(signum: int, frame: Any) -> None:
        for name in (signal.SIGINT, signal.SIGTERM):
            signal.signal(name, signal.SIG_IGN)
        raise Interrupted(signum)

    if not _main_thread():
        yield
        return
    previous = {name: signal.signal(name, interrupt) for name in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(name, handler)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def backend_job(stage: str, name: str | None, options: list[str], work: Callable[..., Any]) -> BatchJob:
    """A job whose workers each build backend ``name`` of ``stage`` once; options are checked here, before any work."""
    from functools import partial

    from maestro_cli.registry import create_backend, parse_options

    backend = get_backend(stage, name)
    parse_options(backend, options)
    return BatchJob(partial(create_backend, stage, backend.name, options), work)
