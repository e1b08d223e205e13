"""maestro report: the data on real performances (Vienna 4x22 MIDI with its MusicXML score, changed in known ways;
the score played back at a known tempo; another piece's score), bad input, a batch with its index page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_maestro, write_midi

PIECE = "Chopin_op10_no3"


@pytest.fixture(scope="module")
def vienna(shared_data):
    root = shared_data / "vienna4x22"
    return {"midi": root / "midi" / f"{PIECE}_p01.mid", "midi2": root / "midi" / f"{PIECE}_p02.mid",
            "score": root / "musicxml" / f"{PIECE}.musicxml",
            "other": root / "musicxml" / "Mozart_K331_1st-mov.musicxml"}


@pytest.fixture(scope="module")
def aligner():
    from maestro_cli.registry import create_backend

    return create_backend("aligner", "dtw", [])


def _report(performance, score, aligner) -> dict:
    from maestro_cli.report.data import performance_report

    return performance_report(Path(performance), Path(score), aligner)[0]


def _consistent(data: dict) -> None:
    """Counts per status agree between the summary, the notes and the measures."""
    s = data["summary"]
    rows = data["notes"]
    for status in ("correct", "missed", "extra", "wrong_pitch"):
        assert s[status] == sum(row["status"] == status for row in rows) == sum(m[status] for m in data["measures"])
    assert s["correct"] + s["missed"] + s["wrong_pitch"] == s["score_notes"]
    assert s["correct"] + s["extra"] + s["wrong_pitch"] == s["played_notes"]


def test_known_changes_to_a_real_performance_are_found(vienna, aligner, tmp_path):
    """Three notes deleted, one played a semitone higher and one added: the report finds exactly those."""
    from maestro_cli.symbolic.midi import read_midi

    base = _report(vienna["midi"], vienna["score"], aligner)
    _consistent(base)
    played = read_midi(vienna["midi"]).piano_notes()

    def alone(k: int) -> bool:  # no other note within 3 semitones and a second
        near = np.abs(played["start_s"] - played["start_s"][k]) < 1.0
        return int(np.sum(near & (np.abs(played["pitch"].astype(int) - int(played["pitch"][k])) <= 3))) == 1

    chosen = [k for k in range(50, len(played)) if alone(k)]
    assert len(chosen) >= 5, len(chosen)
    step = len(chosen) // 5
    deleted, moved = chosen[0:3 * step:step], chosen[3 * step]
    notes = [(int(n["pitch"]) + (k == moved), float(n["start_s"]), float(n["end_s"]), int(n["velocity"]))
             for k, n in enumerate(played) if k not in deleted]
    added = (105, float(played["start_s"][chosen[-1]]) + 0.05, float(played["start_s"][chosen[-1]]) + 0.4, 70)
    changed = write_midi(tmp_path / "changed.mid", notes + [added])
    data = _report(changed, vienna["score"], aligner)
    _consistent(data)
    s, b = data["summary"], base["summary"]
    assert (s["missed"], s["wrong_pitch"], s["extra"]) == (b["missed"] + 3, b["wrong_pitch"] + 1, b["extra"] + 1)
    rows = data["notes"]
    wrong = [row for row in rows if row["status"] == "wrong_pitch"]
    assert [(row["played_pitch"] - row["pitch"], row["start"]) for row in wrong] == [
        (1, round(float(played["start_s"][moved]), 3))]
    extra = [row for row in rows if row["status"] == "extra" and row["played_pitch"] == 105]
    assert len(extra) == 1 and extra[0]["start"] == round(added[1], 3) and extra[0]["velocity"] == 70
    for k in deleted:  # each deleted note's score note is missed, expected close to where it was played
        time, pitch = float(played["start_s"][k]), int(played["pitch"][k])
        assert any(row["status"] == "missed" and row["pitch"] == pitch and abs(row["score_start"] - time) < 0.3
                   for row in rows), (k, time, pitch)


def test_the_score_played_at_a_known_tempo(vienna, aligner, tmp_path):
    """The score's own notes played 1.25 times as fast as its marking: every note as written, on time, and the tempo
    1.25 x the marking in every measure."""
    from maestro_cli.symbolic.scores import read_score

    score = read_score(vienna["score"])
    kept, seen = [], set()
    for n in score.notes:  # unisons of two voices are one key: played once
        key = (int(n["pitch"]), round(float(n["start_s"]), 4))
        if key not in seen:
            seen.add(key)
            kept.append((int(n["pitch"]), 0.8 * float(n["start_s"]), 0.8 * float(n["end_s"]) - 0.01, 60))
    data = _report(write_midi(tmp_path / "played.mid", kept), vienna["score"], aligner)
    _consistent(data)
    s = data["summary"]
    assert s["correct"] == len(kept) and s["extra"] == s["wrong_pitch"] == 0
    assert s["tempo_bpm"] == pytest.approx(1.25 * s["marking_bpm"], rel=0.01)
    assert s["timing_ms"] < 2.0
    full = [m for m in data["measures"][1:-1] if m["tempo_bpm"]]
    assert full and all(m["tempo_bpm"] == pytest.approx(1.25 * m["marking_bpm"], rel=0.02) for m in full)
    assert data["piece"]["tempo_marked"] and data["beats"]["marking_bpm"][5] == pytest.approx(52.5, abs=0.1)


@pytest.fixture(scope="module")
def vienna_page(vienna, tmp_path_factory):
    """The report of a Vienna 4x22 MIDI performance, its audio rendered and embedded, and its JSON."""
    folder = tmp_path_factory.mktemp("report")
    page, target = folder / "r.html", folder / "r.json"
    result = run_maestro("report", str(vienna["midi"]), "--score", str(vienna["score"]), "-o", str(page), "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"path": str(page), "json": str(target)}
    return {"page": page, "data": json.loads(target.read_text())}


def test_report_json_and_page_of_a_midi_performance(vienna, vienna_page):
    from maestro_cli.report.page import read_data

    data, page = vienna_page["data"], vienna_page["page"]
    _consistent(data)
    assert data["schema"] == "maestro-report/1" and data["performance"]["kind"] == "midi"
    assert data["confidence"] > 0.9 and data["warning"] is None
    assert data["backends"] == {"aligner": "dtw", "renderer": "soundfont"}
    assert data["summary"]["pedal_presses"] > 10 and 0 < data["summary"]["pedal_down_fraction"] < 1
    text = page.read_text()
    assert read_data(text) == data and 'src="data:audio/ogg;base64,' in text
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from the network
    again = run_maestro("report", str(vienna["midi"]), "--score", str(vienna["score"]), "-o", str(page))
    assert again.code == 1 and again.stderr.strip() == f"error: {page}: output exists; use --overwrite to replace it"


@pytest.mark.slow
def test_score_of_another_piece_warns(vienna, tmp_path):
    result = run_maestro("report", str(vienna["midi"]), "--score", str(vienna["other"]), "-o",
                         str(tmp_path / "r.html"), "--json", "--audio", "none")
    assert result.code == 0, result.stderr
    assert f"warning: {vienna['other']}: low alignment confidence" in result.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["confidence"] < 0.35 and "another piece" in data["warning"]


@pytest.mark.parametrize("case", ["missing score", "not a performance", "missing performance", "bad audio mode"])
def test_bad_input_gets_one_line(case, vienna, tmp_path):
    text = tmp_path / "notes.mid"
    text.write_text("not music\n")
    args = {"missing score": [str(vienna["midi"]), "--score", str(tmp_path / "none.musicxml")],
            "not a performance": [str(text), "--score", str(vienna["score"])],
            "missing performance": [str(tmp_path / "gone.mid"), "--score", str(vienna["score"])],
            "bad audio mode": [str(vienna["midi"]), "--score", str(vienna["score"]), "--audio", "loud"]}[case]
    result = run_maestro("report", *args, "-o", str(tmp_path / "r.html"))
    lines = result.stderr.strip().splitlines()
    assert result.code != 0 and len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert not (tmp_path / "r.html").exists()
    expected = {"missing score": "no such file", "not a performance": "neither audio", "missing performance":
                "no such file", "bad audio mode": "--audio must be one of embed, link, none"}[case]
    assert expected in lines[0]


@pytest.mark.slow
def test_batch_writes_a_page_each_and_an_index(vienna, tmp_path):
    out = tmp_path / "out"
    args = ["report", str(vienna["midi"]), str(vienna["midi2"]), "--score", str(vienna["score"]), "--out-dir",
            str(out), "--audio", "link"]
    result = run_maestro(*args)
    assert result.code == 0, result.stderr
    pages = [out / f"{PIECE}_p0{k}.report.html" for k in (1, 2)]
    assert result.stdout.split() == [str(p) for p in pages]
    from maestro_cli.audio.io import probe_audio
    from maestro_cli.report.page import read_data

    index = (out / "index.html").read_text()
    for page in pages:
        text, sound = page.read_text(), page.with_suffix(".ogg")
        assert f'<audio id="audio" controls preload="auto" src="{sound.name}">' in text  # --audio link: beside it
        data = read_data(text)
        assert probe_audio(sound).duration > max(row["end"] for row in data["notes"] if "end" in row)
        assert f"href='{page.name}'" in index and f"{100 * data['summary']['accuracy']:.1f} %" in index
    again = run_maestro(*args)
    assert again.code == 1 and "index.html: output exists" in again.stderr


def test_score_metadata_from_the_title_page(shared_data):
    from maestro_cli.symbolic.scores import score_metadata

    bach = score_metadata(shared_data / "asap-sample" / "Bach" / "Prelude" / "bwv_858" / "xml_score.musicxml")
    assert bach == {"title": "Prélude No. 13 in F♯ Major", "composer": "Johann Sebastian Bach"}
    haydn = score_metadata(shared_data / "asap-sample" / "Haydn" / "Keyboard_Sonatas" / "39-1" / "xml_score.musicxml")
    assert haydn["title"] is None or "Copyright" not in haydn["title"]


# --- the page in a real browser: Debian's Chromium driven by Playwright (CI installs both; see .ci/run) ---

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
COUNT_DRAWN = """() => Object.fromEntries(['correct', 'missed', 'extra', 'wrong_pitch'].map((s) => [s,
    new Set(Array.from(document.querySelectorAll(`rect.note[data-status=${s}]`)).map((e) => e.dataset.i)).size]))"""
COUNT_RECTS = """() => ({score: document.querySelectorAll('rect.note.score').length,
                         played: document.querySelectorAll('rect.note.played').length})"""


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield chromium
        chromium.close()


def open_page(browser, path: Path):
    """The page loaded from disk, with the console errors and uncaught exceptions it raised."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: errors.append(f"request {request.url}")
            if not request.url.startswith(("file:", "data:")) else None)
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready]", timeout=10000)
    return page, errors


SEEKS = """() => { window.seeks = []; const audio = document.getElementById('audio');
    audio.addEventListener('seeking', () => window.seeks.push(audio.currentTime)); }"""


def _seeked(page) -> float:
    """Where the audio was last moved to (read at its 'seeking' event: a click also starts playback)."""
    page.wait_for_function("window.seeks.length > 0")
    return page.evaluate("window.seeks.splice(0).pop()")


def _drawn_match(page, data: dict) -> None:
    s = data["summary"]
    assert page.evaluate(COUNT_DRAWN) == {status: s[status] for status in ("correct", "missed", "extra", "wrong_pitch")}
    assert page.evaluate(COUNT_RECTS) == {"score": s["score_notes"], "played": s["played_notes"]}


def test_page_in_chromium_midi_performance(browser, vienna_page):
    data = vienna_page["data"]
    page, errors = open_page(browser, vienna_page["page"])
    _drawn_match(page, data)
    assert page.evaluate("document.querySelectorAll('#ruler .m').length") == len(data["measures"])
    assert page.evaluate("document.querySelectorAll('#measures tbody tr').length") == len(data["measures"])
    last = max(row["end"] for row in data["notes"] if "end" in row)
    assert last < page.evaluate("document.getElementById('audio').duration") < last + 2  # the rendering, its tail
    page.evaluate(SEEKS)
    k = len(data["measures"]) // 2
    page.click(f"#ruler .m[data-m='{k}']")
    assert _seeked(page) == pytest.approx(data["measures"][k]["start"], abs=0.05)
    page.click("#measures tbody tr[data-m='3']")
    assert _seeked(page) == pytest.approx(data["measures"][3]["start"], abs=0.05)
    page.click("#zoomin")
    page.hover("rect.note.played")
    assert "velocity" in page.inner_text("#tip")
    assert errors == []
    page.close()


MAPS = "MAPS_MUS-chpn-p14_ENSTDkAm"
MAPS_SECONDS = 10.0


@pytest.fixture(scope="module")
def maps_page(shared_data, tmp_path_factory):
    """The report of the first seconds of a real MAPS recording (onsets-frames, the fastest transcriber) against its
    score flattened from the A-MAPS MIDI (benchmarks/informed_transcription.py)."""
    import soundfile
    from helpers import benchmark

    pytest.importorskip("torch")
    bench = benchmark("informed_transcription")
    data, folder = shared_data / "maps-disklavier", tmp_path_factory.mktemp("maps")
    audio, rate = soundfile.read(data / "flac" / f"{MAPS}.flac", frames=int(MAPS_SECONDS * 16000), dtype="float32")
    soundfile.write(folder / "clip.flac", audio, rate)
    notes, positions, signatures, spb = bench.flattened_notes(data, MAPS, MAPS_SECONDS)
    bench.write_score(positions, notes["pitch"].astype(np.int64), signatures, spb, folder / "score.mid")
    page = folder / "clip.report.html"
    result = run_maestro("report", str(folder / "clip.flac"), "--score", str(folder / "score.mid"), "--out-dir",
                         str(folder), "--json", "-b", "onsets-frames", "-O", "threads=1")
    assert result.code == 0, result.stderr
    return {"page": page, "data": json.loads(page.with_suffix(".json").read_text())}


@pytest.mark.slow
def test_page_in_chromium_recording(browser, maps_page):
    data = maps_page["data"]
    _consistent(data)
    assert data["performance"] == {"path": "clip.flac", "kind": "audio", "duration_s": MAPS_SECONDS}
    assert data["backends"] == {"aligner": "dtw", "transcriber": "onsets-frames"}
    # measured 0.95 of the score notes confirmed, confidence 0.74: a regression falls below
    assert data["summary"]["accuracy"] > 0.9 and data["confidence"] > 0.6
    assert data["summary"]["tempo_bpm"] == pytest.approx(data["summary"]["marking_bpm"], rel=0.1)
    page, errors = open_page(browser, maps_page["page"])
    _drawn_match(page, data)
    assert page.evaluate("document.getElementById('audio').duration") == pytest.approx(MAPS_SECONDS, abs=0.05)
    k = next(i for i, row in enumerate(data["notes"]) if row["status"] == "correct" and row["start"] > 4)
    page.evaluate(SEEKS)
    page.dispatch_event(f"rect.note.played[data-i='{k}']", "click")  # this note, whatever overlaps it
    assert _seeked(page) == pytest.approx(data["notes"][k]["start"], abs=0.05)
    assert errors == []
    page.close()
