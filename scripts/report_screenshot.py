"""The screenshot in docs/report.md: ``maestro report`` on a Vienna 4x22 performance (Chopin, Etude op. 10 no. 3,
pianist 1, MIDI) with its MusicXML score, four notes changed so that every status shows, opened in headless Chromium.

Run: ``.venv/bin/python scripts/report_screenshot.py [--out docs/img/report.png] [--shared ../shared/data]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def changed_performance(source: Path, target: Path) -> None:
    """The performance with two notes left out, one a semitone higher and one added, in its first measures."""
    import numpy as np

    from maestro_cli.symbolic.midi import read_midi, write_midi
    from maestro_cli.symbolic.notes import make_notes, sort_notes

    midi = read_midi(source)
    notes = midi.notes.copy()
    notes["pitch"][40] += 1
    added = make_notes([96], [float(notes["start_s"][60]) + 0.1], [float(notes["start_s"][60]) + 0.5], [60])
    kept = notes[[k for k in range(len(notes)) if k not in (25, 70)]]
    write_midi(sort_notes(np.concatenate([kept, added])), target, midi.controls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "report.png")
    parser.add_argument("--shared", type=Path,
                        default=Path(os.environ.get("MAESTRO_SHARED_DATA", REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    root = args.shared / "vienna4x22"
    with tempfile.TemporaryDirectory() as folder:
        performance = Path(folder) / "Chopin_op10_no3_p01.mid"
        changed_performance(root / "midi" / performance.name, performance)
        page_path = Path(folder) / "report.html"
        subprocess.run([str(Path(sys.executable).parent / "maestro"), "report", str(performance), "--score",
                        str(root / "musicxml" / "Chopin_op10_no3.musicxml"), "-o", str(page_path)], check=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(page_path.as_uri())
            page.wait_for_selector("body[data-ready]")
            page.click("#zoomin")
            page.hover("rect.note.played[data-status=wrong_pitch]")
            page.screenshot(path=str(args.out), clip={"x": 0, "y": 0, "width": 1280, "height": 1000})
            browser.close()
    print(args.out)


if __name__ == "__main__":
    main()
