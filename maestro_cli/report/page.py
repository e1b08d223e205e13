"""A report as one self-contained HTML page (the template ``template.html`` shipped with the package: inline CSS and
JavaScript drawing the embedded data, no network), and the index page comparing several reports."""

from __future__ import annotations

import base64
import html
import json
import re
from importlib import resources
from typing import Any


def embed_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` or comment openers)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def audio_source(data: bytes | None = None, mime: str = "audio/ogg", link: str | None = None) -> str | None:
    """The ``src`` of the page's audio: ``data`` embedded as a data URI, or a ``link`` (relative URL), or none."""
    if data is not None:
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return link


def render(data: dict, audio_src: str | None = None) -> str:
    """The report page of ``data`` (:func:`maestro_cli.report.data.build`) playing ``audio_src``."""
    template = resources.files("maestro_cli.report").joinpath("template.html").read_text(encoding="utf-8")
    title = data["piece"].get("title") or data["performance"]["path"]
    audio = f' src="{html.escape(audio_src, quote=True)}"' if audio_src else ""
    fill = {"__TITLE__": html.escape(f"Report: {title}"), "__AUDIO__": audio, "__DATA__": embed_json(data)}
    return re.sub("__TITLE__|__AUDIO__|__DATA__", lambda match: fill[match.group(0)], template)


def read_data(page: str) -> dict:
    """The data embedded in a report page written by :func:`render`."""
    from maestro_cli.errors import MaestroError

    start = page.find('<script type="application/json" id="report-data">')
    end = page.find("</script>", start)
    if start < 0 or end < 0:
        raise MaestroError("not a maestro report page", None)
    return json.loads(page[page.index(">", start) + 1:end])


def render_index(entries: list[tuple[str, dict]]) -> str:
    """An index page comparing reports: ``(link to the page, its data)`` per performance, in the given order."""
    rows = []
    for link, data in entries:
        s = data["summary"]
        low = " class='low'" if data.get("warning") else ""
        tempo = s["tempo_bpm"]
        rows.append(
            f"<tr{low}><td class='l'><a href='{html.escape(link, quote=True)}'>"
            f"{html.escape(data['performance']['path'])}</a></td>"
            f"<td>{_clock(data['performance']['duration_s'])}</td>"
            f"<td><span class='bar' style='width:{100 * s['accuracy']:.0f}px'></span> {100 * s['accuracy']:.1f} %</td>"
            f"<td>{s['correct']}</td><td>{s['missed']}</td><td>{s['extra']}</td><td>{s['wrong_pitch']}</td>"
            f"<td>{_number(tempo)}</td><td>{_number(s['tempo_range_bpm'][0])}&ndash;{_number(s['tempo_range_bpm'][1])}"
            f"</td><td>{_number(s['marking_bpm'])}</td><td>{_number(s['timing_ms'])}</td>"
            f"<td>{data['confidence']:.2f}</td></tr>")
    first = entries[0][1]["piece"] if entries else {"title": None, "score": ""}
    name = first.get("title") or first.get("score")
    return INDEX.replace("__TITLE__", html.escape(f"Reports: {name}")).replace("__ROWS__", "\n".join(rows))


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def _number(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.0f}"


INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="maestro report"><title>__TITLE__</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 20px; color: #1f2933; }
table { border-collapse: collapse; } th, td { padding: 4px 10px; text-align: right; border-bottom: 1px solid #d9dde3; }
th { background: #f5f7fa; } td.l { text-align: left; } tr.low td { color: #a06000; }
.bar { display: inline-block; height: 10px; background: #2e9d5b; vertical-align: middle; }
</style></head><body><h1>__TITLE__</h1>
<table><thead><tr><th>performance</th><th>duration</th><th>as written</th><th>correct</th><th>missed</th><th>extra</th>
<th>wrong pitch</th><th>tempo (bpm)</th><th>range</th><th>marking</th><th>timing (ms)</th><th>confidence</th>
</tr></thead>
<tbody>
__ROWS__
</tbody></table>
<p>Each row links to the performance's report. Tempo: beats per minute of the time signature's beat (range: the
10th to 90th percentile of the beats); timing: the mean deviation of the onsets from the local tempo. Rows in
amber: low alignment confidence (a score of another piece?).</p>
</body></html>
"""
