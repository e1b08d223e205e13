"""CLI I/O: the stderr console, inputs from stdin, result lines on stdout, progress bars, batches."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from maestro_cli.errors import MaestroError, UsageError

#: Logs, warnings and progress go to stderr; stdout carries results only.
console = Console(stderr=True)


def stdin_has_input() -> bool:
    """True when stdin is a pipe or file; a terminal or a closed stdin (cron, nohup, CI) means no input."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        return False
    try:
        return not stdin.isatty()
    except (OSError, ValueError):
        return False


def read_inputs(inputs: list[str] | None, *, required: bool = True) -> list[Path]:
    """Input paths from the arguments, or from stdin (one per line) for ``-`` or when piped."""
    names = list(inputs or [])
    if names == ["-"] or (not names and stdin_has_input()):
        try:
            names = [line.strip() for line in (sys.stdin or ()) if line.strip()]
        except UnicodeDecodeError:
            raise UsageError("stdin: not text (binary data?); pipe file paths, one per line") from None
        _check_path_lines(names)
        # a JSON line from an upstream --json stage: take its "path"
        names = [json.loads(name).get("path", name) if name.startswith("{") else name for name in names]
    if not names and required:
        raise UsageError("no input given (name files or pipe paths on stdin)")
    return [Path(name) for name in names]


def _check_path_lines(lines: list[str]) -> None:
    """A usage error (one short line) when stdin holds something other than paths, e.g. a binary file piped in."""
    for number, line in enumerate(lines, 1):
        if len(line) > 4096 or any(ord(c) < 32 and c != "\t" or 0xDC80 <= ord(c) <= 0xDCFF for c in line):
            raise UsageError(f"stdin: line {number} is not a file path (binary data or text without line breaks?); "
                             "pipe file paths, one per line")


def emit(result: Path | str | dict[str, Any], as_json: bool = False) -> None:
    """Print one result line on stdout: a path, or a JSON object with ``--json``."""
    if as_json:
        record = result if isinstance(result, dict) else {"path": str(result)}
        print(json.dumps(record, ensure_ascii=False, default=str), flush=True)
    else:
        print(result if not isinstance(result, dict) else json.dumps(result, default=str), flush=True)


class RateColumn(ProgressColumn):
    """Files per second (or per minute when slower than one a second)."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("")
        rate = f"{speed:.2f} files/s" if speed >= 1 else f"{speed * 60:.1f} files/min"
        return Text(rate, style="progress.data.speed")


def progress(unit: str = "items", transient: bool = True) -> Progress:
    """A rich progress bar on stderr counting ``unit`` ("items", "files": with files/s, or "bytes"), silent when
    stderr is not a terminal."""
    from rich.progress import DownloadColumn, TransferSpeedColumn

    counters = {"bytes": (DownloadColumn(), TransferSpeedColumn()), "files": (MofNCompleteColumn(), RateColumn())}
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                    *counters.get(unit, (MofNCompleteColumn(),)), TimeRemainingColumn(), console=console,
                    transient=transient, disable=not console.is_terminal)


class ConsoleHandler(logging.Handler):
    """Library log records (``maestro_cli.*``) as plain lines on the stderr console."""

    def emit(self, record: logging.LogRecord) -> None:
        console.print(self.format(record), markup=False, highlight=False, soft_wrap=True)


def install_reporting() -> None:
    """Route library messages and progress bars (:mod:`maestro_cli.reporting`) to stderr."""
    from maestro_cli import reporting

    logger = logging.getLogger("maestro_cli")
    if not any(isinstance(handler, ConsoleHandler) for handler in logger.handlers):
        logger.addHandler(ConsoleHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False
    reporting.set_progress_factory(progress)


class TrainingBar:
    """The training loop's reporter on a terminal: a live bar with the step, ETA and ``info``; notes above it."""

    def begin(self, total: int, step: int) -> None:
        self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            TextColumn("{task.fields[info]}"), console=console)
        self.task = self.bar.add_task("train", total=total, completed=step, info="")
        self.bar.start()

    def step(self, step: int, info: str, detail: str) -> None:
        self.bar.update(self.task, completed=step, info=info)

    def note(self, text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    def end(self) -> None:
        self.bar.stop()


def training_report() -> TrainingBar | None:
    """A live bar for the training loop when stderr is a terminal; None (its plain lines) otherwise."""
    return TrainingBar() if console.is_terminal else None


def report_failure(path: Path | str, exc: Exception) -> None:
    """One ``error: <file>: <reason>`` line for an item of a batch that failed (the batch goes on)."""
    message = exc.message if isinstance(exc, MaestroError) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MaestroError) and exc.path:
        path = exc.path
    console.print(f"error: {path}: {message}", markup=False, highlight=False, soft_wrap=True)
