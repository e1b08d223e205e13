"""Fetch a MAESTRO release: resumable HTTP download, SHA-256 verification, safe extraction, lock and marker.

Only the standard library speaks HTTP (``urllib``). A download goes to ``<root>/.downloads/<zip>.part``;
a re-run continues it with a ``Range`` request. Connection errors, time-outs and 5xx answers are retried
with exponential backoff until :class:`RetryPolicy` gives up (by default within about a minute without
progress); the ``.part`` is then kept for the next run.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from maestro_cli import __version__
from maestro_cli.data.archive import MARKER, CorruptArchive, check_archive, extract, read_marker
from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.reporting import progress as progress_bar

log = logging.getLogger(__name__)

BASE_URL = "https://storage.googleapis.com/magentadata/datasets/maestro/"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Release:
    """One official zip. ``size``/``sha256``/``md5`` are None where no trustworthy figure is known."""

    version: str
    midi_only: bool
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None

    @property
    def filename(self) -> str:
        return f"maestro-{self.version}{'-midi' if self.midi_only else ''}.zip"

    def url(self, mirror: str | None = None) -> str:
        """The official URL, or the same path under ``mirror`` (which replaces ``.../maestro/``)."""
        base = (mirror or BASE_URL).rstrip("/") + "/"
        return f"{base}{self.version}/{self.filename}"


#: Sizes and checksums: Magenta's published figures (docs/architecture.md, anchors); v2 full MD5 from mirdata's loader.
RELEASES: dict[tuple[str, bool], Release] = {
    ("v3.0.0", True): Release("v3.0.0", True, 58_416_533,
                              "70470ee253295c8d2c71e6d9d4a815189e35c89624b76d22fce5a019d5dde12c"),
    ("v3.0.0", False): Release("v3.0.0", False, None,
                               "6680fea5be2339ea15091a249fbd70e49551246ddbd5ca50f1b2352c08c95291"),
    ("v2.0.0", True): Release("v2.0.0", True, 59_243_107,
                              "ec2cc9d94886c6b376db1eaa2b8ad1ce62ff9f0a28b3744782b13163295dadf3"),
    ("v2.0.0", False): Release("v2.0.0", False, None, None, md5="7a6c23536ebcf3f50b1f00ac253886a7"),
    ("v1.0.0", True): Release("v1.0.0", True, 46_579_421,
                              "f620f9e1eceaab8beea10617599add2e9c83234199b550382a2f603098ae7135"),
    ("v1.0.0", False): Release("v1.0.0", False),
}


def get_release(version: str, midi_only: bool) -> Release:
    """The release named ``v1``/``v2``/``v3`` (or ``vX.0.0``)."""
    match = re.fullmatch(r"v?([123])(?:\.0\.0)?", version.strip())
    if not match:
        raise UsageError(f"unknown MAESTRO version '{version}'; expected v1, v2 or v3")
    return RELEASES[(f"v{match.group(1)}.0.0", midi_only)]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``retries`` consecutive failures, backoff doubling from ``backoff`` seconds,
    ``timeout`` per socket operation, and at most ``budget`` seconds without receiving a byte."""

    retries: int = 6
    backoff: float = 1.0
    max_backoff: float = 16.0
    timeout: float = 20.0
    budget: float = 60.0


class _Retry(Exception):
    def __init__(self, reason: str, received: int = 0):
        super().__init__(reason)
        self.reason = reason
        self.received = received


def download(url: str, part: Path, size: int | None = None, policy: RetryPolicy = RetryPolicy(),
             progress=None) -> int:
    """Download ``url`` into ``part``, continuing what is there; returns the final size in bytes."""
    part.parent.mkdir(parents=True, exist_ok=True)
    if part.exists() and size is not None and part.stat().st_size > size:
        part.unlink()
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have == size:
        return size
    if size is not None:
        free = shutil.disk_usage(part.parent).free
        if size - have > free:
            raise MaestroError(f"not enough disk space: need {size - have:,} more bytes, {free:,} free", part.parent)
    if have:
        log.info(f"resuming {url} at byte {have:,}")
    else:
        log.info(f"downloading {url}")
    task = progress.add_task(part.name.removesuffix(".part"), total=size, completed=have) if progress else None

    def advance(n: int) -> None:
        if progress:
            progress.advance(task, n)

    def set_total(total: int | None, done: int) -> None:
        if progress:
            progress.update(task, total=total, completed=done)

    failures = 0
    last_progress = time.monotonic()
    while True:
        remaining = policy.budget - (time.monotonic() - last_progress)
        try:
            return _attempt(url, part, size, max(1.0, min(policy.timeout, remaining)), advance, set_total)
        except _Retry as exc:
            now = time.monotonic()
            if exc.received:
                failures, last_progress = 0, now
            failures += 1
            delay = min(policy.backoff * 2 ** (failures - 1), policy.max_backoff)
            if failures > policy.retries or now + delay - last_progress > policy.budget:
                kept = part.stat().st_size if part.exists() else 0
                where = f"{kept:,} bytes kept in {part}" if kept else "nothing downloaded yet"
                raise MaestroError(f"cannot reach {url}; rerun to resume ({exc.reason}; {where})")
            log.warning(f"warning: {exc.reason}; retry {failures}/{policy.retries} in {delay:.1f} s")
            time.sleep(delay)


def _attempt(url: str, part: Path, size: int | None, timeout: float, advance: Callable[[int], None],
             set_total: Callable[[int | None, int], None]) -> int:
    """One HTTP request; raises :class:`_Retry` for transient failures (after keeping what arrived)."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"maestro-piano/{__version__} (python urllib)", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    received = 0
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            start, total = _span(response, have)
            if size is not None and total is not None and total != size:
                raise MaestroError(f"server reports {total:,} bytes but {part.name.removesuffix('.part')} "
                                   f"is {size:,} bytes (wrong mirror?)", url)
            total = total if total is not None else size
            if start == 0 and have:
                log.info("server ignored the Range request; restarting from the beginning")
            set_total(total, start)
            with part.open("r+b" if start else "wb") as sink:
                sink.seek(start)
                sink.truncate()
                while chunk := response.read(CHUNK):
                    sink.write(chunk)
                    received += len(chunk)
                    advance(len(chunk))
            done = start + received
            if total is not None and done < total:
                raise _Retry(f"connection closed after {done:,} of {total:,} bytes", received)
            return done
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            total = _total_from_range(exc.headers.get("Content-Range"))
            if total == have:
                return have
            part.unlink()
            raise _Retry("server refused to resume (HTTP 416); restarting") from None
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise MaestroError(f"HTTP {exc.code} {exc.reason}", url) from None
    except urllib.error.URLError as exc:
        raise _Retry(f"{exc.reason}", received) from None
    except (http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError, OSError) as exc:
        raise _Retry(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, received) from None


def _span(response: http.client.HTTPResponse, have: int) -> tuple[int, int | None]:
    """(first byte this response carries, total size of the file or None)."""
    length = response.headers.get("Content-Length")
    if response.status == 206:
        match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != have:
            raise _Retry("server answered the Range request with an unexpected Content-Range")
        return have, None if match.group(3) == "*" else int(match.group(3))
    return 0, int(length) if length is not None else None


def _total_from_range(value: str | None) -> int | None:
    match = re.match(r"bytes \*/(\d+)", value or "")
    return int(match.group(1)) if match else None


def digests(path: Path, progress=None) -> tuple[str, str]:
    """(SHA-256, MD5) of a file, read once."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    task = (progress.add_task(f"verifying {path.name.removesuffix('.part')}", total=path.stat().st_size)
            if progress else None)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            if progress:
                progress.advance(task, len(chunk))
    return sha.hexdigest(), md5.hexdigest()


def verify(path: Path, release: Release, sha256: str | None, progress=None) -> tuple[str, bool]:
    """Check ``path`` against ``sha256`` (else the release's SHA-256, else its MD5).

    Returns (the file's SHA-256, whether a published/given checksum confirmed it); raises on mismatch.
    """
    found_sha, found_md5 = digests(path, progress)
    expected = (sha256 or release.sha256 or "").lower() or None
    if expected is not None:
        if found_sha != expected:
            raise MaestroError(f"checksum mismatch: expected sha256 {expected}, found {found_sha}")
        return found_sha, True
    if release.md5 is not None:
        if found_md5 != release.md5:
            raise MaestroError(f"checksum mismatch: expected md5 {release.md5}, found {found_md5}")
        return found_sha, True
    log.warning(f"warning: no published checksum for {release.filename}; only the size and the zip's CRCs "
                  f"are checked (sha256 {found_sha})")
    return found_sha, False


def release_for_zip(zip_path: Path, version: str | None = None) -> Release:
    """The release a local zip holds: ``version`` if given, else the ``maestro-vX.Y.Z`` metadata inside;
    MIDI-only when it has no audio files."""
    names = [info.filename for info in check_archive(zip_path)]
    midi_only = not any(name.lower().endswith((".wav", ".flac", ".mp3")) for name in names)
    if version is None:
        found = sorted({m.group(1) for name in names
                        if (m := re.search(r"maestro-(v\d+\.\d+\.\d+)\.(?:json|csv)$", name))})
        if not found:
            raise MaestroError("no maestro-vX.Y.Z.json/csv inside; pass --version", zip_path)
        version = found[-1]
    return get_release(version, midi_only)


def fetch(root: Path, release: Release, *, mirror: str | None = None, sha256: str | None = None,
          from_zip: Path | None = None, policy: RetryPolicy = RetryPolicy()) -> Path:
    """Download (or import ``from_zip``), verify and extract ``release`` to ``<root>/maestro-<version>``."""
    from filelock import FileLock, Timeout

    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise UsageError(f"--sha256 must be 64 hexadecimal digits, got '{sha256}'")
    target = root / f"maestro-{release.version}"
    downloads = root / ".downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(downloads / f"maestro-{release.version}.lock"))
    try:
        lock.acquire(timeout=0.2)
    except Timeout:
        log.info(f"another `maestro fetch` of {release.version} is running; waiting for it to finish")
        lock.acquire()
    try:
        if from_zip is None and _already_fetched(target, release, sha256):
            return target
        with progress_bar("bytes") as bar:
            if from_zip is not None:
                return _import(from_zip, target, release, sha256, bar)
            url = release.url(mirror)
            part = downloads / f"{release.filename}.part"
            size = release.size if sha256 is None else None
            download(url, part, size, policy, bar)
            try:
                found, confirmed = verify(part, release, sha256, bar)
                check_archive(part)
            except MaestroError as exc:
                part.unlink(missing_ok=True)
                raise MaestroError(f"{exc.message}; the download was deleted, rerun to fetch it again", url) from None
            try:
                extract(part, target, _marker(release, found, confirmed, url), bar)
            except CorruptArchive:
                part.unlink(missing_ok=True)
                raise
            part.unlink()
    finally:
        lock.release()
    log.info(f"fetched {release.filename} into {target}")
    return target


def _import(zip_path: Path, target: Path, release: Release, sha256: str | None, bar) -> Path:
    if not zip_path.is_file():
        raise MaestroError("zip file not found", zip_path)
    _check_target(target)
    try:
        found, confirmed = verify(zip_path, release, sha256, bar)
    except MaestroError as exc:
        raise MaestroError(f"{exc.message}; nothing was extracted", zip_path) from None
    marker = read_marker(target)
    if marker and marker.get("sha256") == found:
        log.info(f"{target} already holds this zip (sha256 {found}); nothing to do")
        return target
    extract(zip_path, target, _marker(release, found, confirmed, str(zip_path.resolve())), bar)
    log.info(f"imported {zip_path} into {target}")
    return target


def _check_target(target: Path) -> dict[str, Any] | None:
    """The marker of an existing release folder; refuses to replace a folder `maestro fetch` did not make."""
    marker = read_marker(target)
    if marker is None and target.exists():
        raise MaestroError(f"folder exists but was not created by `maestro fetch` (no {MARKER}); "
                           "move it away or pass another --root", target)
    return marker


def _already_fetched(target: Path, release: Release, sha256: str | None) -> bool:
    marker = _check_target(target)
    if not marker:
        return False
    covers = marker.get("zip") == release.filename or (release.midi_only and marker.get("midi_only") is False)
    if not covers or (sha256 is not None and marker.get("sha256") != sha256.lower()):
        return False
    what = "the full release (which includes the MIDI)" if marker.get("zip") != release.filename else marker["zip"]
    log.info(f"{target} already holds {what}, sha256 {marker.get('sha256')}; nothing to do")
    return True


def _marker(release: Release, sha256: str, confirmed: bool, source: str) -> dict[str, Any]:
    return {"zip": release.filename, "version": release.version, "midi_only": release.midi_only,
            "sha256": sha256, "checksum_confirmed": confirmed, "source": source,
            "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
