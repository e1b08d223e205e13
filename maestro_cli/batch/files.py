"""A batch's files: folders and manifests expanded into inputs, planned outputs checked before any work starts."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Iterable, Sequence

from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.errors import os_reason as _os_reason

#: Files named as inputs with these suffixes are manifests: one path per line, or JSON lines with a "path".
MANIFEST_SUFFIXES = (".txt", ".lst", ".list", ".jsonl")


def expand_inputs(paths: Iterable[Path], suffixes: Sequence[str]) -> list[Path]:
    """Inputs with folders replaced by their files (recursively, sorted) whose name ends with one of ``suffixes``,
    and manifests by the paths they list (relative ones are relative to the manifest's folder)."""
    return [path for path, _ in expand_entries(paths, suffixes)]


def expand_entries(paths: Iterable[Path], suffixes: Sequence[str],
                   keys: Sequence[str] = ()) -> list[tuple[Path, dict[str, Path]]]:
    """:func:`expand_inputs`, each input with the paths its JSON manifest line gives under ``keys`` (resolved like
    the input; ``{}`` for an input not from a JSON line)."""
    found: list[tuple[Path, dict[str, Path]]] = []
    for path in paths:
        if _is_dir(path):
            found += [(p, {}) for p in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                                              and p.name.lower().endswith(tuple(suffixes)))]
        elif path.suffix.lower() in MANIFEST_SUFFIXES and not path.name.lower().endswith(tuple(suffixes)):
            found += read_manifest(path, keys)
        else:
            found.append((path, {}))
    return found


def _is_dir(path: Path) -> bool:
    """``path.is_dir()``, False for a path the system refuses (a name too long, a folder without permission): the
    input is then reported on its own by :func:`input_problem` while the rest of the batch runs."""
    try:
        return path.is_dir()
    except OSError:
        return False


def input_problem(path: Path) -> MaestroError | None:
    """Why ``path`` cannot be read as an input file (missing, a folder, unreadable, a name too long), or None."""
    try:
        info = path.stat()
    except OSError as exc:
        return MaestroError(os_reason(exc), path)
    if stat.S_ISDIR(info.st_mode):
        return MaestroError("is a folder, not a file", path)
    if not os.access(path, os.R_OK):
        return MaestroError("permission denied (cannot read it)", path)
    return None


def os_reason(exc: OSError) -> str:
    """An OS error as the reason of an ``error: <file>: <reason>`` line: ``no such file``, ``file name too long``."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    return _os_reason(exc)


def read_manifest(manifest: Path, keys: Sequence[str] = ()) -> list[tuple[Path, dict[str, Path]]]:
    """The paths a manifest lists: plain lines, or JSON objects with a ``"path"`` (or ``"input"``, as in a results
    manifest), each with the paths of ``keys`` on its line; blank lines and ``#`` skipped."""
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MaestroError(f"cannot read manifest: {exc}", manifest) from None

    def resolve(name: str) -> Path:
        path = Path(name).expanduser()
        return path if path.is_absolute() else manifest.parent / path

    entries = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("{"):
            entries.append((resolve(line), {}))
            continue
        try:
            record = json.loads(line)
            name = record["path"] if "path" in record else record["input"]
            extra = {key: resolve(record[key]) for key in keys if record.get(key) is not None}
        except (ValueError, KeyError, TypeError):
            raise MaestroError(f"line {number}: expected a JSON object with a \"path\" (or \"input\")"
                               + "".join(f" and an optional \"{key}\"" for key in keys), manifest) from None
        entries.append((resolve(name), extra))
    return entries


def check_unique_outputs(plans: Iterable[tuple[Path, Sequence[Path]]]) -> None:
    """A usage error when two inputs would write the same output (e.g. ``a/x.mid`` and ``b/x.mid`` into one folder)."""
    owner: dict[Path, Path] = {}
    for source, targets in plans:
        for target in targets:
            key = target.absolute()
            if key in owner and owner[key] != source:
                raise UsageError(f"{owner[key]} and {source} would both write {target}; "
                                 "rename one, or run them into different --out-dir folders")
            owner[key] = source
