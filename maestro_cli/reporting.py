"""How library code reports long work without knowing the terminal.

Messages go through :mod:`logging` (logger ``maestro_cli.*``); progress bars through :func:`progress`, which returns
the bar the application installed with :func:`set_progress_factory` (the CLI installs rich bars on stderr) or, with
none installed, a silent one. Domain code never imports rich or the CLI.
"""

from __future__ import annotations

from typing import Any, Callable


class SilentProgress:
    """The part of ``rich.progress.Progress`` that library code uses, doing nothing."""

    def __enter__(self) -> "SilentProgress":
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **fields: Any) -> int:
        return 0

    def advance(self, task: int, advance: float = 1) -> None:
        pass

    def update(self, task: int, **changes: Any) -> None:
        pass


_factory: Callable[[str], Any] | None = None


def set_progress_factory(factory: Callable[[str], Any] | None) -> None:
    """Install ``factory(unit)`` (unit "items" or "bytes") returning a rich-Progress-like context manager."""
    global _factory
    _factory = factory


def progress(unit: str = "items") -> Any:
    """A progress context for counting ``unit`` ("items" or "bytes"): the installed bar, or a silent one."""
    return _factory(unit) if _factory is not None else SilentProgress()
