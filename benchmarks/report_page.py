"""Report page benchmark: a 10-minute performance's page, its size and the time Chromium takes to open it.

Input: the MAESTRO v3 performance of 9.5 to 10.5 minutes with the most notes (Liszt, Tarantelle di Bravura
S. 386, 2009: 10:29, 10,500 notes), against a "score" made from it (every 20th note left out, every 37th a semitone
higher, so all four statuses are drawn). ``maestro report`` writes the page without audio and with the rendering
embedded; headless Chromium (Debian's, through Playwright) opens each page ``--runs`` times from disk and the time
from navigation to the page drawn (``window.reportReadyMs``) is recorded; the median is reported. Targets
(issue 32): under 2 s to open, under 5 MB without audio.

Run: ``.venv/bin/python benchmarks/report_page.py [--runs 3] [--shared ../shared/data]``.
Prints a rich table and one JSON line. Timings on a shared machine are upper bounds.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def ten_minutes(shared: Path) -> Path:
    import symusic

    root = shared / "maestro-v2.0.0-midi"
    with open(root / "maestro-v3.0.0.csv", newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if 570 <= float(row["duration"]) <= 630]
    counts = {row["midi_filename"]: sum(len(t.notes) for t in symusic.Score(str(root / row["midi_filename"])).tracks)
              for row in rows}
    return root / max(sorted(counts), key=counts.get)


def score_from(performance: Path, target: Path) -> None:
    """The performance's notes as a MIDI score, every 20th note left out and every 37th a semitone higher."""
    import numpy as np

    from maestro_cli.symbolic.midi import read_midi, write_midi

    notes = read_midi(performance).notes
    notes = notes[np.arange(len(notes)) % 20 != 19]
    notes["pitch"][36::37] += 1
    write_midi(notes, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shared", type=Path,
                        default=Path(os.environ.get("MAESTRO_SHARED_DATA", REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    console = Console(stderr=True)
    performance = ten_minutes(args.shared)
    maestro = Path(sys.executable).parent / "maestro"
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        score = Path(folder) / "score.mid"
        score_from(performance, score)
        pages = {}
        for audio in ("none", "embed"):
            pages[audio] = Path(folder) / f"{audio}.html"
            start = time.perf_counter()
            subprocess.run([str(maestro), "report", str(performance), "--score", str(score), "-o", str(pages[audio]),
                            "--audio", audio, "--json"], check=True, capture_output=True)
            results[f"write_s_{audio}"] = round(time.perf_counter() - start, 2)
            results[f"size_mb_{audio}"] = round(pages[audio].stat().st_size / 1e6, 2)
        data = json.loads(pages["none"].with_suffix(".json").read_text())
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for audio, page_path in pages.items():
                times = []
                for _ in range(args.runs):
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.goto(page_path.as_uri())
                    page.wait_for_selector("body[data-ready]", timeout=60000)
                    times.append(page.evaluate("window.reportReadyMs") / 1000)
                    page.close()
                results[f"open_s_{audio}"] = round(statistics.median(times), 3)
            browser.close()
    results.update(performance=performance.name, duration_s=data["performance"]["duration_s"],
                   notes=len(data["notes"]), measures=len(data["measures"]),
                   counts={k: data["summary"][k] for k in ("correct", "missed", "extra", "wrong_pitch")})
    table = Table(title=f"maestro report: a {data['performance']['duration_s'] / 60:.1f}-minute performance")
    for column in ("page", "size (MB)", "target", "open in Chromium (s, median)", "target", "write (s)"):
        table.add_column(column)
    for audio in ("none", "embed"):
        table.add_row(f"--audio {audio}", str(results[f"size_mb_{audio}"]), "< 5" if audio == "none" else "-",
                      str(results[f"open_s_{audio}"]), "< 2", str(results[f"write_s_{audio}"]))
    console.print(table)
    print(json.dumps({"benchmark": "report_page", **results}))


if __name__ == "__main__":
    main()
