"""Safe zip extraction: every entry is checked before anything is written, then the archive is unpacked
into a temporary folder beside the target and renamed into place."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from maestro_cli.errors import MaestroError

#: Written inside an extracted release; records what was fetched and its verified checksum.
MARKER = ".maestro-fetch.json"


class CorruptArchive(MaestroError):
    """The zip's own CRCs or structure are broken."""


def unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    """Why extracting ``info`` would be unsafe (absolute path, ``..``, symlink, device), or None."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in PurePosixPath(name).parts:
        return "path escapes the target folder"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "special file"
    return None


def check_archive(zip_path: Path) -> list[zipfile.ZipInfo]:
    """The entries of ``zip_path`` after refusing the whole archive if any entry is unsafe."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise MaestroError(f"not a readable zip archive: {exc}", zip_path) from None
    for info in entries:
        reason = unsafe_reason(info)
        if reason:
            raise MaestroError(f"refusing zip entry '{info.filename}' ({reason}); nothing was extracted", zip_path)
    return entries


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The fetch marker of an extracted release, or None."""
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def extract(zip_path: Path, target: Path, marker: dict[str, Any], progress=None) -> Path:
    """Unpack ``zip_path`` so that its content (its single top folder, if it has one) becomes ``target``.

    ``marker`` is written into the content as :data:`MARKER` before the rename, so a release folder
    exists only complete and with its marker. An existing ``target`` is replaced only after success.
    """
    entries = check_archive(zip_path)
    files = [info for info in entries if not info.is_dir()]
    needed = sum(info.file_size for info in files)
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if needed > free:
        raise MaestroError(f"not enough disk space to extract: need {needed:,} bytes, {free:,} free", target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.extract-", dir=target.parent))
    try:
        task = (progress.add_task(f"extracting {zip_path.name.removesuffix('.part')}", total=needed)
                if progress else None)
        base = staging.resolve()
        with zipfile.ZipFile(zip_path) as archive:
            for info in entries:
                out = (staging / info.filename.replace("\\", "/")).resolve()
                if out != base and base not in out.parents:
                    raise MaestroError(f"refusing zip entry '{info.filename}' (path escapes the target folder)",
                                       zip_path)
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, out.open("wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
                if progress:
                    progress.advance(task, info.file_size)
        content = _content_folder(staging)
        (content / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _replace(content, target)
    except zipfile.BadZipFile as exc:
        raise CorruptArchive(f"corrupt zip archive: {exc}", zip_path) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _content_folder(staging: Path) -> Path:
    children = [child for child in staging.iterdir() if child.name != "__MACOSX"]
    if len(children) == 1 and children[0].is_dir() and not children[0].is_symlink():
        return children[0]
    return staging


def _replace(content: Path, target: Path) -> None:
    """Rename ``content`` to ``target``; an old ``target`` is moved aside first and deleted afterwards."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent)) / target.name
        os.replace(target, old)
    try:
        os.replace(content, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)
