"""A batch's files: folders and manifests expanded into inputs, planned outputs checked before any work starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

from maestro_cli.errors import MaestroError, UsageError

#: Files named as inputs with these suffixes are manifests: one path per line, or JSON lines with a "path".
MANIFEST_SUFFIXES = (".txt", ".lst", ".list", ".jsonl")


def expand_inputs(paths: Iterable[Path], suffixes: Sequence[str]) -> list[Path]:
    """Inputs with folders replaced by their files (recursively, sorted) whose name ends with one of ``suffixes``,
    and manifests by the paths they list (relative ones are relative to the manifest's folder)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(tuple(suffixes))
                            and not p.name.startswith("."))
        elif path.suffix.lower() in MANIFEST_SUFFIXES and not path.name.lower().endswith(tuple(suffixes)):
            found += read_manifest(path)
        else:
            found.append(path)
    return found


def read_manifest(manifest: Path) -> list[Path]:
    """The paths a manifest lists: plain lines, or JSON objects with a ``"path"``; blank lines and ``#`` skipped."""
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MaestroError(f"cannot read manifest: {exc}", manifest) from None
    paths = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                line = json.loads(line)["path"]
            except (ValueError, KeyError, TypeError):
                raise MaestroError(f"line {number}: expected a JSON object with a \"path\"", manifest) from None
        path = Path(line).expanduser()
        paths.append(path if path.is_absolute() else manifest.parent / path)
    return paths


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
