"""Output files: default names that never silently replace a file, and atomic writes (temp file + rename)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from maestro_cli.errors import MaestroError, os_reason


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
    """An existing output file is an error unless ``overwrite`` (``None``: no output asked for); so is an output that
    is a folder, or one in a folder that takes no new files (checked before any work)."""
    if target is None:
        return
    try:
        if target.is_dir():
            raise MaestroError("is a folder; name an output file (or give the folder with --out-dir)", target)
        exists = target.exists()
    except OSError:  # a name too long: reported by the input's own check, or by the write
        return
    if exists and not overwrite:
        raise MaestroError("output exists; use --overwrite to replace it", target)
    check_folder(target)


_writable: set[Path] = set()


def check_folder(target: Path) -> None:
    """An error naming the folder when ``target``'s folder (or, if it does not exist yet, the folder it would be
    made in) takes no new files: found before any work, with a test file created and removed (once per folder)."""
    folder = target.absolute().parent
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    if folder in _writable:
        return
    if not folder.is_dir():
        raise MaestroError("is not a folder; cannot write outputs into it", folder)
    try:
        fd, name = tempfile.mkstemp(prefix=".maestro-write-test.", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise MaestroError(f"cannot write into this folder ({os_reason(exc)})", folder) from None
    _writable.add(folder)


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it into place only if the block succeeds.

    An OS error about the folder, the temporary file or the rename names ``target`` (never the hidden file).
    """
    with _temporary(target) as tmp:
        yield tmp
        _rename(tmp, target)


@contextlib.contextmanager
def _temporary(target: Path) -> Iterator[Path]:
    """A hidden temporary file beside ``target`` (``.<stem>.<random>.tmp<suffix>``), removed on the way out."""
    try:
        if target.is_dir():
            raise MaestroError("is a folder; name an output file (or give the folder with --out-dir)", target)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    except OSError as exc:
        raise _write_error(exc, target) from None
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        try:
            yield tmp
        except OSError as exc:
            if tmp_name not in (exc.filename, exc.filename2):
                raise
            raise _write_error(exc, target) from None
    finally:
        tmp.unlink(missing_ok=True)


def _rename(tmp: Path, target: Path) -> None:
    try:
        os.replace(tmp, target)
    except OSError as exc:
        raise _write_error(exc, target) from None


def _write_error(exc: OSError, target: Path) -> MaestroError:
    return MaestroError(f"cannot write the output ({os_reason(exc)})", target)


@contextlib.contextmanager
def atomic_outputs(*targets: Path) -> Iterator[tuple[Path, ...]]:
    """:func:`atomic_output` for outputs that belong together (a MIDI and its report): one temporary path each, all
    renamed into place only once the block has written every one. A failure leaves none of the new files: should a
    rename fail, the outputs already renamed are put back as they were (the old file, or none)."""
    with contextlib.ExitStack() as stack:
        temps = [stack.enter_context(_temporary(target)) for target in targets]
        yield tuple(temps)
        backups = [stack.enter_context(_backup(target)) for target in targets]
        done: list[int] = []
        try:
            for k, (tmp, target) in enumerate(zip(temps, targets)):
                _rename(tmp, target)
                done.append(k)
        except BaseException:
            for k in done:
                if backups[k] is not None:
                    os.replace(backups[k], targets[k])
                else:
                    targets[k].unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def _backup(target: Path) -> Iterator[Path | None]:
    """A hard link to ``target`` as it is now (None if it does not exist), removed on the way out."""
    if not target.exists():
        yield None
        return
    with _temporary(target) as backup:
        backup.unlink()
        os.link(target, backup)
        yield backup


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_output(target) as tmp:
        tmp.write_bytes(data)
