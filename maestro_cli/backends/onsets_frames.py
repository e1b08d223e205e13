"""The built-in ``onsets-frames`` transcriber: inference and training (torch imported lazily)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from maestro_cli.hookspecs import hookimpl

#: Folder under ``maestro_models`` (the repository's ``models/``) holding the shipped checkpoint.
DEFAULT_MODEL = "maestro-onsets-frames"
#: Candidates (:meth:`OnsetsFramesTranscriber.transcribe_candidates`) are decoded down to this onset posterior: the
#: lowest at which a left-out score note was more often played than a wrong one on two MAPS recordings (posterior
#: odds with 5 % wrong score notes, see docs/transcribe.md).
CANDIDATE_FLOOR = 0.005


@dataclass
class OnsetsFramesOptions:
    checkpoint: str | None = None  # a model folder or .pt (default: the shipped model)
    onset_threshold: float | None = None  # default: the checkpoint's
    frame_threshold: float | None = None
    min_frames: int | None = None
    chunk_seconds: float = 20.0
    overlap_seconds: float = 3.0
    batch_chunks: int = 4  # chunks run together (faster; memory grows with it)
    threads: int = 0  # torch CPU threads (0: torch's default: all cores, or a batch worker's OMP_NUM_THREADS)
    candidate_floor: float = CANDIDATE_FLOOR  # transcribe_candidates: the lowest onset posterior of a candidate

    def __post_init__(self) -> None:
        from maestro_cli.errors import UsageError

        if not 0.0 < self.candidate_floor <= 1.0:
            raise UsageError("onsets-frames option candidate_floor must be > 0 and at most 1")


def default_checkpoint() -> Path:
    """The shipped model's ``model.pt``; a clear error when none is installed."""
    from maestro_models import MODELS_DIR

    from maestro_cli.errors import MaestroError

    path = MODELS_DIR / DEFAULT_MODEL / "model.pt"
    if not path.is_file():
        raise MaestroError("no onsets-frames model installed; pass -O checkpoint=PATH", path.parent)
    return path


class OnsetsFramesTranscriber:
    """Transcribes with a checkpoint (the shipped model by default); trains new ones."""

    def __init__(self, options: OnsetsFramesOptions | None = None):
        self.options = options or OnsetsFramesOptions()
        self._model = None

    def model(self):
        """The model, loaded once, with the thresholds of the options applied."""
        if self._model is None:
            import dataclasses
            import pickle

            import torch

            from maestro_cli.errors import MaestroError
            from maestro_cli.models.onsets_frames import load_model
            from maestro_cli.models.runtime import find_checkpoint

            if self.options.threads > 0:
                torch.set_num_threads(self.options.threads)
            path = Path(self.options.checkpoint) if self.options.checkpoint else default_checkpoint()
            try:
                model = load_model(find_checkpoint(path))
            except FileNotFoundError as exc:
                raise MaestroError(str(exc), path) from None
            except (RuntimeError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
                raise MaestroError(f"not an onsets-frames checkpoint ({type(exc).__name__}: {exc})", path) from None
            overrides = {name: getattr(self.options, name) for name in ("onset_threshold", "frame_threshold",
                                                                        "min_frames")
                         if getattr(self.options, name) is not None}
            model.config = dataclasses.replace(model.config, **overrides)
            self._model = model
        return self._model

    def transcribe_notes(self, audio: Path):
        """The notes (:data:`~maestro_cli.symbolic.notes.NOTE_DTYPE`) of a recording."""
        from maestro_cli.audio.io import load_audio
        from maestro_cli.models.onsets_frames import SAMPLE_RATE, transcribe_array

        samples = load_audio(audio, SAMPLE_RATE, mono=True)
        return transcribe_array(self.model(), samples, chunk_seconds=self.options.chunk_seconds,
                                overlap_seconds=self.options.overlap_seconds, batch_chunks=self.options.batch_chunks)

    def transcribe_candidates(self, audio: Path, out_midi: Path):
        """The transcription written to ``out_midi``; returned: its notes and those down to onset posterior
        ``candidate_floor``, with each one's peak onset posterior
        (:class:`maestro_cli.protocols.CandidateTranscriber`)."""
        from maestro_cli.audio.io import load_audio
        from maestro_cli.models.onsets_frames import SAMPLE_RATE, decode_candidates, decode_notes, posteriors_array
        from maestro_cli.symbolic.midi import write_midi

        model = self.model().eval()
        post = posteriors_array(model, load_audio(audio, SAMPLE_RATE, mono=True),
                                chunk_seconds=self.options.chunk_seconds, overlap_seconds=self.options.overlap_seconds,
                                batch_chunks=self.options.batch_chunks)
        write_midi(decode_notes(post["onset"], post["frame"], post["velocity"], model.config), out_midi)
        return decode_candidates(post["onset"], post["frame"], post["velocity"], model.config,
                                 floor=self.options.candidate_floor)

    def transcribe(self, audio: Path, out_midi: Path, *, notes_csv: Path | None = None) -> None:
        from maestro_cli.outputs import atomic_output
        from maestro_cli.symbolic.midi import write_midi
        from maestro_cli.symbolic.notes import write_notes_csv

        notes = self.transcribe_notes(audio)
        write_midi(notes, out_midi)
        if notes_csv is not None:
            with atomic_output(notes_csv) as tmp:
                write_notes_csv(notes, tmp)

    def train(self, request) -> Path:
        """``maestro train onsets-frames``: options validated against ``TrainConfig``."""
        from maestro_cli.errors import MaestroError
        from maestro_cli.models import onsets_frames_train as oft
        from maestro_cli.models.loop import resumed_config
        from maestro_cli.models.onsets_frames_data import DataConfig, build
        from maestro_cli.registry import parse_dataclass
        from maestro_cli.reporting import progress

        cfg = parse_dataclass(oft.TrainConfig, request.options, "onsets-frames")
        if request.resume and (Path(request.out) / "last.pt").is_file():  # the run's options, then the given ones
            cfg = resumed_config(cfg, request.options, Path(request.out) / "last.pt")
        if request.steps is not None:
            cfg.steps = request.steps
        if not Path(request.data).is_dir():
            raise MaestroError("dataset folder not found", request.data)
        cache = Path(cfg.cache) if cfg.cache else Path(request.out) / "data"
        data_config = DataConfig(excerpt_seconds=cfg.excerpt_seconds, excerpts_per_piece=cfg.excerpts_per_piece,
                                 validation_pieces=cfg.validation_pieces, max_pieces=cfg.max_pieces, seed=cfg.seed)
        with progress() as bar:
            task = bar.add_task("excerpts", total=None)
            build(Path(request.data), cache, data_config, cfg.synthesize,
                  on_progress=lambda done, total: bar.update(task, completed=done, total=total))
        train_data, val_data = oft.load_excerpts(cache, "train"), oft.load_excerpts(cache, "validation")
        if not len(train_data):
            raise MaestroError("no training excerpts could be made", cache)
        logging.getLogger(__name__).info(f"data cache {cache}: {len(train_data)} train, "
                                         f"{len(val_data)} validation excerpts")
        return oft.train(train_data, val_data, Path(request.out), cfg, resume=request.resume, device=request.device,
                         report=request.report)


@hookimpl
def register_transcribers(register):
    register("onsets-frames", OnsetsFramesTranscriber, options=OnsetsFramesOptions, aliases=("onsets-and-frames",),
             priority=20, description="Onsets and Frames (Hawthorne et al. 2018/2019) on a log-mel front end; "
                                     "overlapping chunks for long recordings; trainable on rendered MIDI")
