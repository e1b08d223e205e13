"""The round trip: generate -> render -> transcribe, and score each transcription against its generated MIDI.

Each stage is reached through the registry and its protocol only (``Generator.generate``, ``Renderer.render``,
``Transcriber.transcribe``), so any installed plugin takes part. Work is shared: a generator's pieces are rendered
once per renderer, and each rendering is transcribed once per transcriber.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from maestro_cli.errors import MaestroError, NoBackendError
from maestro_cli.protocols import GenerationRequest
from maestro_cli.registry import get_backend, get_registry

log = logging.getLogger(__name__)

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
    """The steps that failed, each logged as one ``error: <step>: <reason>`` line."""

    def attempt(self, step: str, action: Callable[[], Any]) -> Any:
        """``action()``, or None after logging its error; usage errors and ``--debug`` still raise."""
        try:
            return action()
        except MaestroError as exc:
            if exc.exit_code == 2:
                raise
            log.error(f"error: {step}: {exc.message}")
        except Exception as exc:  # noqa: BLE001 - one broken backend must not hide the other combinations
            if os.environ.get("MAESTRO_DEBUG"):
                raise
            log.error(f"error: {step}: {type(exc).__name__}: {exc}")
        self.append(step)
        return None


def run(request: GenerationRequest, generators: list[str], renderers: list[str], transcribers: list[str],
        workdir: Path, failures: Failures) -> Iterator[dict[str, Any]]:
    """Yield one result per (generator, renderer, transcriber) combination, in that nesting order.

    A backend that fails is reported and recorded in ``failures``; the combinations without it go on.
    """
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
        log.info(f"roundtrip: generating {request.n} piece(s) with {g}")
        midis = failures.attempt(f"generator '{g}'", lambda: generate(g))
        for r in renderers if midis else ():
            log.info(f"roundtrip: rendering with {r}")
            audios = failures.attempt(f"renderer '{r}'", lambda: render(r, midis))
            for t in transcribers if audios else ():
                log.info(f"roundtrip: transcribing with {t}")
                scores = failures.attempt(f"transcriber '{t}'", lambda: transcribe(t, midis, audios))
                if scores:
                    yield {"generator": g, "renderer": r, "transcriber": t, "pieces": len(scores),
                           "seconds": request.seconds,
                           **{key: sum(s[key] for s in scores) / len(scores) for key in SCORES}}
