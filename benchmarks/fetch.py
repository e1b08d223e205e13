"""Fetch benchmark: `maestro fetch` against the usual peer recipe, from a local HTTP mirror.

The payload is a real MAESTRO-layout zip built from the shared v2 MIDI folder (all 1282 files + metadata,
about the size of the official MIDI-only zip). Two scenarios:

* clean: download + SHA-256 + extraction. Peer = what mirdata/muspy do: ``urllib.request.urlretrieve``,
  then hash, then ``zipfile.extractall``.
* dropped: the server hangs up half-way through the first attempt, then the command is re-run.
  We resume with a Range request; the peer starts again from byte 0. Measured: bytes sent by the server.

Run: ``.venv/bin/python benchmarks/fetch.py [--shared DIR]``. Prints a rich table and one JSON line.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import shutil
import tempfile
import threading
import urllib.request
import zipfile
from pathlib import Path

from common import MAESTRO_MIDI, argument_parser, console, emit, table, timed

from maestro_cli.data.download import RetryPolicy, fetch, get_release

NAME = "maestro-v2.0.0-midi.zip"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        data, server = self.server.data, self.server
        requested = self.headers.get("Range")
        start = int(re.match(r"bytes=(\d+)-", requested).group(1)) if requested else 0
        self.send_response(206 if requested else 200)
        if requested:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = memoryview(data)[start:]
        if server.drop_after is not None:
            body, server.drop_after = body[: server.drop_after], None
        for offset in range(0, len(body), 1 << 16):
            self.wfile.write(body[offset: offset + (1 << 16)])
        server.sent += len(body)


def build_zip(maestro: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(maestro.rglob("*")):
            if path.is_file() and not path.name.startswith("maestro-v3"):
                archive.write(path, "maestro-v2.0.0/" + str(path.relative_to(maestro)))
    return buffer.getvalue()


def peer(url: str, work: Path, digest: str) -> None:
    """urlretrieve + hash + extractall: no resume, a partial file is simply overwritten on re-run."""
    zip_path = work / NAME
    urllib.request.urlretrieve(url, zip_path)
    if hashlib.sha256(zip_path.read_bytes()).hexdigest() != digest:
        raise RuntimeError("checksum mismatch")
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(work)


def ours(mirror: str, work: Path, digest: str) -> None:
    fetch(work, get_release("v2", True), mirror=mirror, sha256=digest, policy=RetryPolicy(retries=0))


def run(tool: str, server, mirror: str, digest: str, drop: bool) -> tuple[float, int]:
    """Wall time of the whole scenario (including the failed first attempt) and bytes the server sent."""
    work = Path(tempfile.mkdtemp(prefix=f"bench-fetch-{tool}-"))
    server.sent, server.drop_after = 0, (len(server.data) // 2 if drop else None)
    url = f"{mirror}v2.0.0/{NAME}"

    def scenario() -> None:
        for attempt in range(2):
            try:
                return ours(mirror, work, digest) if tool == "maestro fetch" else peer(url, work, digest)
            except Exception:  # noqa: BLE001 - the dropped first attempt; the re-run follows
                if attempt:
                    raise

    try:
        return timed(scenario)[0], server.sent
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    args = argument_parser(__doc__).parse_args()
    data = build_zip(args.shared / MAESTRO_MIDI)
    digest = hashlib.sha256(data).hexdigest()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.data, server.sent, server.drop_after = data, 0, None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mirror = f"http://127.0.0.1:{server.server_address[1]}/maestro/"
    results = []
    for scenario in ("clean", "dropped"):
        for tool in ("maestro fetch", "peer (urlretrieve+extractall)"):
            seconds, sent = run(tool, server, mirror, digest, scenario == "dropped")
            results.append({"scenario": scenario, "tool": tool, "seconds": round(seconds, 2),
                            "bytes_sent": sent, "sent_ratio": round(sent / len(data), 3)})
    server.shutdown()
    console(stdout=True).print(table(
        f"fetch: {len(data) / 1e6:.1f} MB MAESTRO-layout zip from a local mirror",
        ("scenario", "tool", "seconds", "bytes sent", "x zip size"),
        [(row["scenario"], row["tool"], f"{row['seconds']:.2f}", f"{row['bytes_sent']:,}", f"{row['sent_ratio']:.2f}")
         for row in results], left=2))
    emit("fetch", {"zip_bytes": len(data), "results": results})


if __name__ == "__main__":
    main()
