"""The built-in ``transformer`` generator: composer-conditioned sampling and training (torch imported lazily)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from maestro_cli.hookspecs import hookimpl

#: Folder under ``maestro_models`` (the repository's ``models/``) holding the shipped default checkpoint.
DEFAULT_MODEL = "maestro-transformer"


@dataclass
class TransformerOptions:
    device: str = "auto"
    threads: int = 2  # torch CPU threads (0: torch's default)
    max_hold: float = 12.0  # seconds a note may sound at most (0: no limit); see maestro_cli.models.sampling


def passive_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spinning (call before torch is imported).

    On a shared CPU, spinning threads of one process steal the cores its other threads wait for: sampling
    (thousands of tiny ops) ran 10x slower with 2 threads than with 1 on a loaded 2-core machine.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def default_checkpoint() -> Path:
    """The shipped model's folder; a clear error when none is installed."""
    from maestro_models import MODELS_DIR

    from maestro_cli.errors import MaestroError

    folder = MODELS_DIR / DEFAULT_MODEL
    if not (folder / "model.pt").is_file():
        raise MaestroError("no default generator model installed; pass --checkpoint", folder)
    return folder


class TransformerGenerator:
    """Samples performances from a checkpoint (the shipped model by default); trains new ones."""

    def __init__(self, options: TransformerOptions | None = None):
        self.options = options or TransformerOptions()

    def generate(self, request) -> list[bytes]:
        """``request.n`` pieces of ``request.seconds`` of music (:func:`maestro_cli.models.sampling.sample_pieces`)."""
        passive_openmp()
        from maestro_cli.models.sampling import sample_pieces

        checkpoint = Path(request.checkpoint) if request.checkpoint else default_checkpoint()
        return sample_pieces(request, checkpoint, self.options.device, self.options.threads, self.options.max_hold)

    def train(self, request) -> Path:
        """``maestro train transformer``: options validated against :class:`TrainConfig`.

        With ``--resume`` the run's stored options apply, overridden by those given again.
        """
        from maestro_cli.errors import MaestroError
        from maestro_cli.models import transformer_train as tt
        from maestro_cli.models.loop import resumed_config
        from maestro_cli.models.transformer_data import load_split
        from maestro_cli.registry import parse_dataclass

        cfg = parse_dataclass(tt.TrainConfig, request.options, "transformer")
        if not Path(request.data).is_dir():
            raise MaestroError("dataset folder not found", request.data)
        if request.resume and (Path(request.out) / "last.pt").is_file():  # the run's options, then the given ones
            cfg = resumed_config(cfg, request.options, Path(request.out) / "last.pt")
        if request.steps is not None:
            cfg.steps = request.steps
        if cfg.init:
            cfg.init = str(default_checkpoint() if cfg.init == "default" else Path(cfg.init))
        train_split = load_split(Path(request.data), "train")
        val_split = load_split(Path(request.data), "validation")
        return tt.train(train_split, val_split, Path(request.out), cfg, resume=request.resume,
                        device=request.device, report=request.report)


@hookimpl
def register_generators(register):
    register("transformer", TransformerGenerator, options=TransformerOptions, aliases=("music-transformer",),
             priority=100, description="Decoder-only Transformer over performance events, composer-conditioned "
                                       "(RoPE, KV cache); trainable on CPU, GPU or torchrun multi-GPU")
