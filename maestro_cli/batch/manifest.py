"""The record of a batch run: one JSON line per input (input, output, status, error, seconds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence


class ManifestWriter:
    """Writes and flushes one line per finished item, so a killed run leaves a valid record of what it finished."""

    def __init__(self, path: Path | None):
        self.handle = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = path.open("w", encoding="utf-8")

    def write(self, source: Path, fields: Mapping[str, Path], outputs: Sequence[Path], status: str,
              error: str | None = None, seconds: float = 0.0) -> None:
        """``status`` is ``ok``, ``skipped`` (its output existed) or ``failed`` (with ``error``); ``fields`` are the
        input's companion files (align: its ``score``); a second output (transcribe's note CSV) is listed under
        ``outputs``."""
        if self.handle is None:
            return
        record: dict[str, Any] = {"input": str(source), **{key: str(path) for key, path in fields.items()},
                                  "output": str(outputs[0]), "status": status, "error": error,
                                  "seconds": round(seconds, 3)}
        if len(outputs) > 1:
            record["outputs"] = [str(output) for output in outputs]
        self.handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
