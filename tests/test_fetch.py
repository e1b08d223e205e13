"""`maestro fetch` against a real HTTP server on 127.0.0.1 (Range support, dropped connections, 5xx)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from maestro_cli.backends.maestro_dataset import MaestroDatasetBackend, MaestroOptions
from maestro_cli.data.archive import MARKER, check_archive, unsafe_reason
from maestro_cli.data.download import BASE_URL, get_release
from maestro_cli.data.maestro import open_dataset
from maestro_cli.errors import MaestroError

MAESTRO = Path(sys.executable).parent / "maestro"
ZIP_PATH = "/maestro/v2.0.0/maestro-v2.0.0-midi.zip"
PER_SPLIT = {"train": 3, "validation": 2, "test": 2}


def run_maestro(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(MAESTRO), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _build_zip(maestro_root: Path, extra: dict[str, bytes] | None = None) -> tuple[bytes, list[dict]]:
    """A MAESTRO-layout MIDI-only zip: a few real performances per split and their v2 metadata."""
    rows = json.loads((maestro_root / "maestro-v2.0.0.json").read_text())
    rows.sort(key=lambda row: (maestro_root / row["midi_filename"]).stat().st_size)
    chosen = []
    for split, n in PER_SPLIT.items():
        chosen += [row for row in rows if row["split"] == split][:n]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("maestro-v2.0.0/maestro-v2.0.0.json", json.dumps(chosen))
        header = "canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration\n"
        lines = [",".join(f'"{row[key]}"' for key in header.strip().split(",")) for row in chosen]
        archive.writestr("maestro-v2.0.0/maestro-v2.0.0.csv", header + "\n".join(lines) + "\n")
        archive.writestr("maestro-v2.0.0/LICENSE", (maestro_root / "LICENSE").read_bytes())
        for row in chosen:
            archive.write(maestro_root / row["midi_filename"], "maestro-v2.0.0/" + row["midi_filename"])
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue(), chosen


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        server = self.server
        data = server.files.get(self.path)
        requested = self.headers.get("Range")
        if server.statuses:
            status = server.statuses.pop(0)
            server.log.append((requested, 0, status))
            self.send_error(status)
            return
        if data is None:
            server.log.append((requested, 0, 404))
            self.send_error(404)
            return
        start = int(re.match(r"bytes=(\d+)-", requested).group(1)) if requested else 0
        if start >= len(data) and requested:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            server.log.append((requested, 0, 416))
            return
        self.send_response(206 if requested else 200)
        if requested:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if server.drop_after is not None:  # send part of the body, then hang up
            body, server.drop_after = body[: server.drop_after], None
        for offset in range(0, len(body), 16384):
            self.wfile.write(body[offset: offset + 16384])
            time.sleep(server.delay)
        server.log.append((requested, len(body), 206 if requested else 200))


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.log, httpd.statuses, httpd.drop_after, httpd.delay = {}, [], [], None, 0.0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.mirror = f"http://127.0.0.1:{httpd.server_address[1]}/maestro/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def release_zip(maestro_root: Path) -> tuple[bytes, list[dict]]:
    return _build_zip(maestro_root)


def _backend(**options) -> MaestroDatasetBackend:
    return MaestroDatasetBackend(MaestroOptions(**{"retries": 0, "backoff": 0.01, "timeout": 5.0, **options}))


def _fetch(server, root: Path, data: bytes, **options) -> Path:
    return _backend(**options).fetch(version="v2", midi_only=True, root=root, mirror=server.mirror,
                                     sha256=hashlib.sha256(data).hexdigest())


def _leftovers(root: Path) -> list[str]:
    """Anything besides the lock file: partial downloads, staging folders, releases."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.name.endswith(".lock")
                  and p != root / ".downloads")


def test_urls_and_published_checksums() -> None:
    v3 = get_release("v3", midi_only=True)
    assert v3.url() == BASE_URL + "v3.0.0/maestro-v3.0.0-midi.zip"
    assert v3.url("https://mirror.example/data") == "https://mirror.example/data/v3.0.0/maestro-v3.0.0-midi.zip"
    assert v3.size == 58_416_533 and v3.sha256.startswith("70470ee2")
    assert get_release("2", midi_only=False).url() == BASE_URL + "v2.0.0/maestro-v2.0.0.zip"
    assert get_release("v1.0.0", midi_only=True).size == 46_579_421


def test_cli_download_extracts_release(server, release_zip, maestro_root: Path, tmp_path: Path) -> None:
    data, rows = release_zip
    server.files[ZIP_PATH] = data
    root = tmp_path / "home"
    digest = hashlib.sha256(data).hexdigest()
    result = run_maestro("fetch", "--version", "v2", "--midi-only", "--root", str(root), "--mirror", server.mirror,
                         "--sha256", digest)
    assert result.returncode == 0, result.stderr
    folder = root / "maestro-v2.0.0"
    assert result.stdout.strip() == str(folder)
    assert server.log == [(None, len(data), 200)]
    for row in rows:
        assert (folder / row["midi_filename"]).read_bytes() == (maestro_root / row["midi_filename"]).read_bytes()
    marker = json.loads((folder / MARKER).read_text())
    assert marker["sha256"] == digest and marker["checksum_confirmed"] is True
    assert not (root / ".downloads" / "maestro-v2.0.0-midi.zip.part").exists()
    dataset = open_dataset(root)  # the data root finds the fetched release
    assert dataset.root == folder and dataset.counts_by_split() == PER_SPLIT
    assert dataset.validate() == []

    again = run_maestro("fetch", "--version", "v2", "--midi-only", "--root", str(root), "--mirror", server.mirror,
                        "--sha256", digest)
    assert again.returncode == 0 and again.stdout.strip() == str(folder)
    assert "nothing to do" in again.stderr
    assert len(server.log) == 1  # no second request


def test_dropped_connection_resumes_with_range(server, release_zip, tmp_path: Path) -> None:
    data, _ = release_zip
    server.files[ZIP_PATH] = data
    half = len(data) // 2
    server.drop_after = half
    with pytest.raises(MaestroError, match=r"cannot reach .*; rerun to resume"):
        _fetch(server, tmp_path, data)
    part = tmp_path / ".downloads" / "maestro-v2.0.0-midi.zip.part"
    assert part.stat().st_size == half
    assert not (tmp_path / "maestro-v2.0.0").exists()

    folder = _fetch(server, tmp_path, data)
    assert server.log[-1] == (f"bytes={half}-", len(data) - half, 206)
    assert sum(sent for _, sent, _ in server.log) == len(data)
    assert len(open_dataset(folder)) == sum(PER_SPLIT.values())
    assert not part.exists()


def test_retries_within_one_run(server, release_zip, tmp_path: Path) -> None:
    data, _ = release_zip
    server.files[ZIP_PATH] = data
    server.statuses = [503]
    server.drop_after = len(data) // 3
    folder = _fetch(server, tmp_path, data, retries=3)
    assert [status for _, _, status in server.log] == [503, 200, 206]
    assert server.log[2][0] == f"bytes={len(data) // 3}-"
    assert (folder / "maestro-v2.0.0.json").is_file()


def test_corrupted_byte_is_a_checksum_error(server, release_zip, tmp_path: Path) -> None:
    data, _ = release_zip
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0xFF
    server.files[ZIP_PATH] = bytes(corrupt)
    expected = hashlib.sha256(data).hexdigest()
    found = hashlib.sha256(corrupt).hexdigest()
    with pytest.raises(MaestroError) as error:
        _fetch(server, tmp_path, data)
    assert f"expected sha256 {expected}, found {found}" in str(error.value)
    assert _leftovers(tmp_path) == []  # no .part, no staging folder, no release


def test_official_size_catches_a_wrong_mirror(server, release_zip, tmp_path: Path) -> None:
    server.files[ZIP_PATH] = release_zip[0]
    with pytest.raises(MaestroError, match="is 59,243,107 bytes"):
        _backend().fetch(version="v2", midi_only=True, root=tmp_path, mirror=server.mirror)


def test_escaping_entry_is_refused(server, maestro_root: Path, tmp_path: Path) -> None:
    data, _ = _build_zip(maestro_root, extra={"../evil": b"gotcha", "maestro-v2.0.0/../../evil2": b"gotcha"})
    server.files[ZIP_PATH] = data
    root = tmp_path / "root"
    with pytest.raises(MaestroError, match=r"refusing zip entry '\.\./evil' \(path escapes the target folder\)"):
        _fetch(server, root, data)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "evil2").exists()
    assert _leftovers(root) == []


def test_unsafe_entries_are_detected(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("maestro-v2.0.0/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    assert unsafe_reason(link) == "symbolic link"
    assert unsafe_reason(zipfile.ZipInfo("/etc/passwd")) == "absolute path"
    assert unsafe_reason(zipfile.ZipInfo("a\\..\\..\\b")) == "path escapes the target folder"
    assert unsafe_reason(zipfile.ZipInfo("maestro-v2.0.0/2004/x.midi")) is None
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(MaestroError, match="symbolic link"):
        check_archive(path)


def test_from_zip_imports_offline(release_zip, tmp_path: Path) -> None:
    data, rows = release_zip
    zip_file = tmp_path / "maestro-v2.0.0-midi.zip"
    zip_file.write_bytes(data)
    root = tmp_path / "home"
    wrong = run_maestro("fetch", "--from-zip", str(zip_file), "--root", str(root), "--sha256", "0" * 64)
    assert wrong.returncode == 1
    assert f"expected sha256 {'0' * 64}, found {hashlib.sha256(data).hexdigest()}" in wrong.stderr
    assert not (root / "maestro-v2.0.0").exists() and zip_file.exists()

    result = run_maestro("fetch", "--from-zip", str(zip_file), "--root", str(root), "--sha256",
                         hashlib.sha256(data).hexdigest(), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"path": str(root / "maestro-v2.0.0")}  # version read from the zip
    assert len(open_dataset(root)) == len(rows)


def test_no_server_is_a_quick_clear_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    started = time.monotonic()
    result = run_maestro("fetch", "--midi-only", "--root", str(tmp_path), "--mirror", f"http://127.0.0.1:{port}/maestro/",
                         "-O", "retries=2", "-O", "backoff=0.1")
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    url = f"http://127.0.0.1:{port}/maestro/v3.0.0/maestro-v3.0.0-midi.zip"
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot reach {url}; rerun to resume")
    assert "Traceback" not in result.stderr


def test_concurrent_fetches_download_once(server, release_zip, tmp_path: Path) -> None:
    data, _ = release_zip
    server.files[ZIP_PATH] = data
    server.delay = 0.02  # slow enough that the second fetch starts while the first downloads
    results: list[Path | Exception] = []

    def work() -> None:
        try:
            results.append(_fetch(server, tmp_path, data))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=60)
    assert results == [tmp_path / "maestro-v2.0.0"] * 2
    assert [status for _, _, status in server.log] == [200]


@pytest.mark.slow
def test_cli_data_on_shared_folder(maestro_root: Path) -> None:
    result = run_maestro("data", "--root", str(maestro_root))
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines()
            if line.startswith("│") and line.split("│")[1].strip() in ("train", "validation", "test", "all")}
    assert [rows[s].split("│")[2].strip() for s in ("train", "validation", "test", "all")] == [
        "962", "137", "177", "1276"]

    chopin = run_maestro("data", "--root", str(maestro_root), "--composer", "chopin", "--split", "test", "--json")
    records = [json.loads(line) for line in chopin.stdout.splitlines()]
    expected = open_dataset(maestro_root).filter(composer="Frédéric Chopin", split="test")
    assert len(records) == len(expected) > 0
    assert {record["composer"] for record in records} == {"Frédéric Chopin"}
    assert all(os.path.isfile(record["midi_path"]) for record in records)

    bad = run_maestro("data", "--root", str(maestro_root), "--split", "dev")
    assert bad.returncode == 2 and "unknown split 'dev'" in bad.stderr


def test_foreign_folder_is_never_overwritten(server, release_zip, tmp_path: Path) -> None:
    data, _ = release_zip
    server.files[ZIP_PATH] = data
    mine = tmp_path / "maestro-v2.0.0" / "notes.txt"
    mine.parent.mkdir()
    mine.write_text("my own files")
    with pytest.raises(MaestroError, match="not created by `maestro fetch`"):
        _fetch(server, tmp_path, data)
    assert mine.read_text() == "my own files" and server.log == []


def test_default_policy_gives_up_within_a_minute_without_network(tmp_path: Path, monkeypatch) -> None:
    import urllib.error

    import maestro_cli.data.download as download

    clock = [0.0]
    sleeps: list[float] = []

    def no_network(request, timeout):
        clock[0] += 0.5  # a failed DNS lookup takes a moment
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(download.urllib.request, "urlopen", no_network)
    monkeypatch.setattr(download, "time", SimpleNamespace(sleep=sleep, monotonic=lambda: clock[0]))
    with pytest.raises(MaestroError, match=r"cannot reach https://storage\.googleapis\.com/.*; rerun to resume"):
        MaestroDatasetBackend().fetch(version="v3", midi_only=True, root=tmp_path)
    assert len(sleeps) >= 3 and sleeps == sorted(sleeps)  # growing backoff
    assert 20 < clock[0] <= 60
