"""Errors users see as one line: ``error: <file>: <what is wrong>``."""

from __future__ import annotations

from pathlib import Path


class MaestroError(Exception):
    """A problem with the user's input or environment (exit code 1).

    ``path`` names the file at fault, if any; it is printed before the message.
    """

    exit_code = 1

    def __init__(self, message: str, path: str | Path | None = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def __reduce__(self):
        """Pickle message, path and class (batch workers send errors back to the command)."""
        return _rebuild, (type(self), self.message, self.path)


def os_reason(exc: OSError) -> str:
    """An OS error as the reason of an ``error: <file>: <reason>`` line (``permission denied``)."""
    return (exc.strerror or type(exc).__name__).lower()


def _rebuild(cls: type, message: str, path: str | None) -> MaestroError:
    error = Exception.__new__(cls)
    MaestroError.__init__(error, message, path)
    return error


class UsageError(MaestroError):
    """Wrong command-line usage (exit code 2)."""

    exit_code = 2


class NoBackendError(MaestroError):
    """No backend installed for a stage."""

    def __init__(self, stage: str):
        super().__init__(f"no backend installed for stage '{stage}'")
