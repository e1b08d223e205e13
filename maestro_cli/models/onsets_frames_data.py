"""Training data for the Onsets-and-Frames transcriber, cached on disk as excerpts.

Each excerpt is one ``.npz`` file: ``mel`` (frames, n_mels) float16 log-mel at 16 kHz and ``notes``, float32 rows
``onset_s, offset_s, pitch, velocity`` (:func:`maestro_cli.symbolic.notes.to_rows`) relative to the excerpt start,
sustain pedal applied (a note struck before the excerpt has a negative onset); :func:`load_split` reads them back
as notes (:data:`maestro_cli.symbolic.notes.NOTE_DTYPE`). Excerpts come from one of two sources:

* **audio**: a MAESTRO-layout folder with recordings beside the MIDI; excerpts are cut from the audio.
* **synthesized** (MIDI only): the MIDI is rendered with several piano soundfonts and augmented so the model
  does not learn one synthesiser: a random velocity curve, a small detuning (pitch bend), a random EQ, reverb,
  low-pass, gain and noise. FluidR3_GM is kept out of training (:data:`HELD_OUT_SOUNDFONT`) so renders with it
  measure generalisation.

The cache is incremental: existing excerpt files are kept, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import functools
import json
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from maestro_cli.errors import MaestroError
from maestro_cli.symbolic.notes import from_rows, to_rows

SAMPLE_RATE = 16000
#: A Debian ``fluid-soundfont-gm`` soundfont never used for training: test renders measure generalisation.
HELD_OUT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
#: Training pianos: (soundfont, GM program). pretty_midi's TimGM6mb always; the Debian ones when installed
#: (``musescore-general-soundfont-lossless``, ``csound-soundfont``). Not FluidR3Mono/FluidR3_GS: FluidR3 samples.
_TRAINING_PIANOS: tuple[tuple[str, int], ...] = (
    ("pretty_midi:TimGM6mb.sf2", 0), ("pretty_midi:TimGM6mb.sf2", 1),
    ("/usr/share/sounds/sf2/MuseScore_General_Full.sf2", 0), ("/usr/share/sounds/sf2/MuseScore_General_Full.sf2", 1),
    ("/usr/share/sounds/sf2/sf_GMbank.sf2", 0), ("/usr/share/sounds/sf2/sf_GMbank.sf2", 1),
)


@dataclass(frozen=True)
class DataConfig:
    """How excerpts are cut and synthesised (saved in the cache's manifest)."""

    excerpt_seconds: float = 15.0
    excerpts_per_piece: int = 6
    validation_pieces: int = 16
    validation_seconds: float = 20.0
    preroll_seconds: float = 3.0  # notes struck this long before the excerpt are rendered too
    max_pieces: int = 0  # 0: every train-split piece
    seed: int = 0


def training_pianos() -> list[tuple[Path, int]]:
    """The (soundfont, program) pairs used for synthesis that exist on this machine."""
    from maestro_cli.audio.synth import default_soundfont

    out = []
    for name, program in _TRAINING_PIANOS:
        path = default_soundfont().parent / name.split(":", 1)[1] if name.startswith("pretty_midi:") else Path(name)
        if path.is_file():
            out.append((path, program))
    return out


# ---------------------------------------------------------------------------------------------------- synthesis

def excerpt(notes: np.ndarray, start: float, seconds: float, preroll: float = 0.0) -> np.ndarray:
    """The notes sounding in ``[start, start + seconds)``, shifted to the excerpt and cut at its end.

    Notes struck more than ``preroll`` seconds before ``start`` are left out (they are not rendered either).
    """
    onset = notes["start_s"]
    keep = (onset >= start - preroll) & (onset < start + seconds) & (notes["end_s"] > start)
    out = notes[keep]  # a copy: boolean indexing
    out["start_s"] -= start
    out["end_s"] = np.minimum(out["end_s"] - start, seconds)
    return out


def augment(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random EQ, reverb, low-pass, gain and noise (pedalboard), as a real room and microphone might add."""
    import pedalboard

    chain = [
        pedalboard.LowShelfFilter(cutoff_frequency_hz=float(rng.uniform(80, 400)), gain_db=float(rng.uniform(-8, 8))),
        pedalboard.PeakFilter(cutoff_frequency_hz=float(np.exp(rng.uniform(np.log(300), np.log(4000)))),
                              gain_db=float(rng.uniform(-8, 8)), q=float(rng.uniform(0.5, 2.0))),
        pedalboard.HighShelfFilter(cutoff_frequency_hz=float(rng.uniform(2000, 6000)),
                                   gain_db=float(rng.uniform(-12, 6))),
    ]
    if rng.random() < 0.6:
        chain.append(pedalboard.Reverb(room_size=float(rng.uniform(0.1, 0.9)), damping=float(rng.uniform(0.2, 0.8)),
                                       wet_level=float(rng.uniform(0.05, 0.4)), dry_level=1.0,
                                       width=1.0))
    if rng.random() < 0.3:
        chain.append(pedalboard.LowpassFilter(cutoff_frequency_hz=float(rng.uniform(3000, 7500))))
    out = pedalboard.Pedalboard(chain)(audio[None].astype(np.float32), SAMPLE_RATE)[0]
    peak = float(np.abs(out).max(initial=0.0)) or 1.0
    out *= 10.0 ** (rng.uniform(-24, -1) / 20.0) / peak
    if rng.random() < 0.5:
        rms = float(np.sqrt(np.mean(out ** 2))) or 1e-4
        noise = rng.standard_normal(len(out)).astype(np.float32)
        if rng.random() < 0.5:  # pink-ish: integrate white noise lightly
            noise = np.cumsum(noise) * 0.02
            noise -= np.convolve(noise, np.ones(256) / 256, mode="same")
            noise /= float(np.std(noise)) or 1.0
        out += noise * rms * 10.0 ** (-rng.uniform(15, 45) / 20.0)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def synthesize(notes: np.ndarray, seconds: float, piano: tuple[Path, int], rng: np.random.Generator,
               preroll: float) -> np.ndarray:
    """Render an excerpt's notes (onsets from ``-preroll``) with ``piano``; returns ``seconds`` of 16 kHz audio."""
    from maestro_cli.audio.synth import render_midi_to_array
    from maestro_cli.symbolic.midi import midi_bytes

    shifted = notes.copy()
    shifted["start_s"] += preroll
    shifted["end_s"] += preroll
    gamma = rng.uniform(0.7, 1.4)
    shifted["velocity"] = np.clip(np.round(127.0 * (shifted["velocity"] / 127.0) ** gamma), 1, 127)
    detune_cents = float(rng.uniform(-20, 20))  # a pitch bend of +-200 cents spans +-8191
    midi = midi_bytes(shifted, program=piano[1], pitch_bend=int(round(detune_cents / 200.0 * 8191)))
    audio = render_midi_to_array(midi, piano[0], SAMPLE_RATE, tail=0.0)
    start, total = int(round(preroll * SAMPLE_RATE)), int(round(seconds * SAMPLE_RATE))
    audio = audio[start:start + total]
    return np.pad(audio, (0, total - len(audio)))


# ---------------------------------------------------------------------------------------------------- the cache

@functools.lru_cache(maxsize=1)
def _front_end():
    from maestro_cli.models.onsets_frames import LogMel, OnsetsFramesConfig

    return LogMel(OnsetsFramesConfig())


def log_mel(audio: np.ndarray) -> np.ndarray:
    """The model's front end (every preset shares it) as float16 (frames, n_mels)."""
    import torch

    with torch.no_grad():
        mel = _front_end()(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None])[0]
    return mel.numpy().astype(np.float16)


def _save(path: Path, audio: np.ndarray, notes: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, mel=log_mel(audio), notes=to_rows(notes).astype(np.float32))
    tmp.replace(path)


@dataclass(frozen=True)
class Job:
    """One excerpt to make: ``split/name.npz`` from ``midi`` at ``start`` seconds."""

    split: str
    name: str
    midi: Path
    audio: Path | None
    start: float
    seconds: float


def plan(root: Path, config: DataConfig, synthesize_audio: bool) -> list[Job]:
    """Excerpts of the train split (``excerpts_per_piece`` per piece) and of some validation pieces."""
    from maestro_cli.data.maestro import open_dataset

    dataset = open_dataset(root)
    rng = np.random.default_rng(config.seed)
    jobs: list[Job] = []
    for split, count, seconds, pieces in (
            ("train", config.excerpts_per_piece, config.excerpt_seconds, config.max_pieces),
            ("validation", 1, config.validation_seconds, config.validation_pieces)):
        records = list(dataset.filter(split=split))
        if not synthesize_audio:
            records = [r for r in records if r.audio_path is not None]
        rng.shuffle(records)
        if pieces:
            records = records[:pieces]
        for record in records:
            span = max(record.duration - seconds, 0.0)
            for k, start in enumerate(np.sort(rng.uniform(0, span, count))):
                stem = f"{record.midi_path.stem}-{k}"
                jobs.append(Job(split, stem, record.midi_path, None if synthesize_audio else record.audio_path,
                                float(start), seconds))
    if not jobs:
        what = "MIDI files" if synthesize_audio else "audio files (use -O synthesize=true for MIDI only)"
        raise MaestroError(f"no train/validation {what} in the dataset", root)
    return jobs


def make_excerpt(job: Job, config: DataConfig, pianos: list[tuple[Path, int]], out: Path) -> None:
    """Render or cut one excerpt and write its ``.npz``."""
    from maestro_cli.audio.io import load_audio
    from maestro_cli.symbolic.midi import read_midi

    notes = read_midi(job.midi).sounding()
    rng = np.random.default_rng(zlib.crc32(f"{config.seed}/{job.split}/{job.name}".encode()))
    if job.audio is None:
        rendered = excerpt(notes, job.start, job.seconds, config.preroll_seconds)
        piano = pianos[int(rng.integers(len(pianos)))]
        audio = augment(synthesize(rendered, job.seconds, piano, rng, config.preroll_seconds), rng)
        labels = rendered
    else:
        audio = load_audio(job.audio, SAMPLE_RATE, allow_silent=True)
        first = int(job.start * SAMPLE_RATE)
        audio = audio[first:first + int(job.seconds * SAMPLE_RATE)]
        labels = excerpt(notes, job.start, job.seconds, preroll=np.inf)
    _save(out / job.split / f"{job.name}.npz", audio, labels)


def build(root: Path, out: Path, config: DataConfig, synthesize_audio: bool,
          on_progress: Callable[[int, int], None] | None = None) -> Path:
    """Make every missing excerpt under ``out`` and write ``out/manifest.json``; returns ``out``."""
    manifest = out / "manifest.json"
    wanted = {"config": asdict(config), "synthesized": synthesize_audio}
    if manifest.is_file():
        found = json.loads(manifest.read_text())
        if {k: found.get(k) for k in wanted} != wanted:
            raise MaestroError("the data cache was built with other settings; choose another cache folder", out)
    jobs = plan(root, config, synthesize_audio)
    pianos = training_pianos() if synthesize_audio else []
    out.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({**wanted, "pianos": [f"{p}:{prog}" for p, prog in pianos],
                                    "held_out_soundfont": str(HELD_OUT_SOUNDFONT), "excerpts": len(jobs)}, indent=1))
    _make_missing(jobs, config, pianos, out, on_progress)
    return out


def _make_missing(jobs: list[Job], config: DataConfig, pianos: list[tuple[Path, int]], out: Path,
                  on_progress: Callable[[int, int], None] | None) -> None:
    """Make the excerpts of ``jobs`` not cached yet (so an interrupted build resumes)."""
    todo = [job for job in jobs if not (out / job.split / f"{job.name}.npz").is_file()]
    for done, job in enumerate(todo, 1):
        try:
            make_excerpt(job, config, pianos, out)
        except MaestroError:
            pass  # an excerpt without notes or an unreadable file: skipped, the rest goes on
        if on_progress:
            on_progress(done, len(todo))


def build_held_out(root: Path, out: Path, config: DataConfig, split: str = "validation-held-out",
                   on_progress: Callable[[int, int], None] | None = None) -> Path:
    """The validation excerpts rendered with :data:`HELD_OUT_SOUNDFONT` only, under ``out/split``.

    A synthesiser the model never trained on: choosing checkpoints and decoding thresholds on it favours what
    carries over to unseen (real) pianos rather than what fits the training soundfonts. Returns ``out``.
    """
    if not HELD_OUT_SOUNDFONT.is_file():
        raise MaestroError("the held-out soundfont is missing (apt-get install fluid-soundfont-gm)", HELD_OUT_SOUNDFONT)
    jobs = [replace(job, split=split) for job in plan(root, config, True) if job.split == "validation"]
    _make_missing(jobs, config, [(HELD_OUT_SOUNDFONT, 0)], out, on_progress)
    return out


def load_split(out: Path, split: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(mel float16, notes)`` of every cached excerpt of ``split``, sorted by name."""
    for path in sorted((out / split).glob("*.npz")):
        with np.load(path) as data:
            yield data["mel"], from_rows(data["notes"])
