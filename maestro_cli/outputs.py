"""Output files: default names that never silently replace a file, and atomic writes (temp file + rename)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from maestro_cli.errors import MaestroError


def output_path(source: Path, suffix: str, out_dir: Path | None = None, out_file: Path | None = None,
                overwrite: bool = False) -> Path:
    """``<out_dir or cwd>/<source stem><suffix>`` (or ``out_file``); refuses to replace a file unless ``overwrite``."""
    if out_file is not None:
        target = out_file
    else:
        target = (out_dir or Path.cwd()) / (source.stem + suffix)
    refuse_existing(target, overwrite)
    return target


def refuse_existing(target: Path | None, overwrite: bool) -> None:
    """An existing output file is an error unless ``overwrite`` (``None``: no output asked for)."""
    if target is not None and target.exists() and not overwrite:
        raise MaestroError("output exists; use --overwrite to replace it", target)


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it into place only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_output(target) as tmp:
        tmp.write_bytes(data)
