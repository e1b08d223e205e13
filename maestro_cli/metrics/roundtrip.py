"""The round trip: generate -> render -> transcribe, and score each transcription against its generated MIDI.

Each stage is reached through the registry and its protocol only (``Generator.generate``, ``Renderer.render``,
``Transcriber.transcribe``), so any installed plugin takes part. Work is shared: a generator's pieces are rendered
once per renderer, and each rendering is transcribed once per transcriber.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from maestro_cli.errors import MaestroError, NoBackendError
from maestro_cli.protocols import GenerationRequest
from maestro_cli.registry import get_backend, get_registry

STAGES = ("generator", "renderer", "transcriber")
#: Sample rate of the rendered audio (every transcriber resamples to its own rate).
SAMPLE_RATE = 44100
#: Result fields, each the mean over the pieces of a combination.
SCORES = ("note_f1", "note_offset_f1", "note_offset_velocity_f1")


def backend_names(stage: str, chosen: list[str] | None) -> list[str]:
    """The named backends of ``stage`` (aliases resolved), or every installed one; none installed is an error."""
    registry = get_registry(stage)
    if not registry.backends:
        raise NoBackendError(stage)
    if not chosen:
        return registry.names()
    return list(dict.fromkeys(registry.get(name).name for name in chosen))


def score(reference_midi: Path, transcription_midi: Path) -> dict[str, float]:
    """Note F1 of the transcription against the generated MIDI (both with the sustain pedal applied)."""
    from maestro_cli.metrics.transcription import evaluate_files

    metrics = evaluate_files(reference_midi, transcription_midi)
    return {key: float(metrics[key]) for key in SCORES}


class Failures(list):
    """The steps that failed (each already reported on stderr as one ``error:`` line)."""

    def attempt(self, step: str, action: Callable[[], Any]) -> Any:
        """``action()``, or None after reporting its error; usage errors and ``--debug`` still raise."""
        from maestro_cli.cli.io import report_failure

        try:
            return action()
        except MaestroError as exc:
            if exc.exit_code == 2:
                raise
            report_failure(step, exc)
        except Exception as exc:  # noqa: BLE001 - one broken backend must not hide the other combinations
            if os.environ.get("MAESTRO_DEBUG"):
                raise
            report_failure(step, exc)
        self.append(step)
        return None


def run(request: GenerationRequest, generators: list[str], renderers: list[str], transcribers: list[str],
        workdir: Path, failures: Failures) -> Iterator[dict[str, Any]]:
    """Yield one result per (generator, renderer, transcriber) combination, in that nesting order.

    A backend that fails is reported and recorded in ``failures``; the combinations without it go on.
    """
    from maestro_cli.cli.io import console
    from maestro_cli.outputs import atomic_write_bytes

    def generate(name: str) -> list[Path]:
        pieces = get_backend("generator", name).create([]).generate(request)
        midis = [workdir / name / f"piece_{i:02d}.mid" for i in range(len(pieces))]
        for path, data in zip(midis, pieces):
            atomic_write_bytes(path, data)
        return midis

    def render(name: str, midis: list[Path]) -> list[Path]:
        renderer = get_backend("renderer", name).create([])
        audios = [midi.parent / name / f"{midi.stem}.wav" for midi in midis]
        for midi, audio in zip(midis, audios):
            audio.parent.mkdir(parents=True, exist_ok=True)
            renderer.render(midi, audio, sample_rate=SAMPLE_RATE, audio_format="wav", soundfont=None)
        return audios

    def transcribe(name: str, midis: list[Path], audios: list[Path]) -> list[dict[str, float]]:
        transcriber = get_backend("transcriber", name).create([])
        scores = []
        for midi, audio in zip(midis, audios):
            estimate = audio.parent / name / f"{midi.stem}.mid"
            estimate.parent.mkdir(parents=True, exist_ok=True)
            transcriber.transcribe(audio, estimate)
            scores.append(score(midi, estimate))
        return scores

    for g in generators:
        console.print(f"roundtrip: generating {request.n} piece(s) with {g}", highlight=False)
        midis = failures.attempt(f"generator '{g}'", lambda: generate(g))
        for r in renderers if midis else ():
            console.print(f"roundtrip: rendering with {r}", highlight=False)
            audios = failures.attempt(f"renderer '{r}'", lambda: render(r, midis))
            for t in transcribers if audios else ():
                console.print(f"roundtrip: transcribing with {t}", highlight=False)
                scores = failures.attempt(f"transcriber '{t}'", lambda: transcribe(t, midis, audios))
                if scores:
                    yield {"generator": g, "renderer": r, "transcriber": t, "pieces": len(scores),
                           "seconds": request.seconds,
                           **{key: sum(s[key] for s in scores) / len(scores) for key in SCORES}}


def command(request: GenerationRequest, generators: list[str] | None, renderers: list[str] | None,
            transcribers: list[str] | None, *, keep: Path | None, as_json: bool) -> list[dict[str, Any]]:
    """Check that every stage has a backend, run the round trip, print a table (or JSON lines) on stdout.

    Exits with code 1 (after printing the combinations that worked) when any backend failed.
    """
    import typer

    from maestro_cli.cli.io import emit

    names = {stage: backend_names(stage, chosen)
             for stage, chosen in zip(STAGES, (generators, renderers, transcribers))}
    results: list[dict[str, Any]] = []
    failures = Failures()
    with tempfile.TemporaryDirectory(prefix="maestro-roundtrip-") as tmp:
        workdir = keep if keep is not None else Path(tmp)
        for result in run(request, names["generator"], names["renderer"], names["transcriber"], workdir, failures):
            results.append(result)
            if as_json:
                emit(result, as_json=True)
    if results and not as_json:
        _table(results)
    if failures:
        raise typer.Exit(1)
    return results


def _table(results: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="round trip: generate -> render -> transcribe, note F1 against the generated MIDI")
    for column in ("generator", "renderer", "transcriber", "pieces", "note F1", "+offset", "+velocity"):
        table.add_column(column, justify="right" if column not in STAGES else "left")
    for r in results:
        table.add_row(r["generator"], r["renderer"], r["transcriber"], str(r["pieces"]),
                      *(f"{r[key]:.3f}" for key in SCORES))
    out = Console(highlight=False)
    out.width = out.width if out.is_terminal else 120  # a file or a pipe gets whole column titles
    out.print(table)
