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
        """``request.n`` pieces of about ``request.seconds`` of music, one batch with a KV cache."""
        passive_openmp()
        import numpy as np
        import torch

        from maestro_cli.data.composers import resolve_composer
        from maestro_cli.errors import MaestroError
        from maestro_cli.models.runtime import pick_device
        from maestro_cli.models.sampling import NoteHold
        from maestro_cli.models.transformer_checkpoint import load_model
        from maestro_cli.tokens import performance as events

        composer = resolve_composer(request.composer) if request.composer else events.UNKNOWN
        path = Path(request.checkpoint) if request.checkpoint else default_checkpoint()
        if self.options.threads > 0:
            torch.set_num_threads(self.options.threads)
        try:
            model, ckpt = load_model(path, pick_device(self.options.device))
        except ValueError as exc:
            raise MaestroError(str(exc)) from None
        except FileNotFoundError as exc:
            raise MaestroError(str(exc), path) from None
        except (RuntimeError, KeyError, TypeError) as exc:
            raise MaestroError(f"not a transformer checkpoint ({type(exc).__name__}: {exc})", path) from None
        if ckpt.get("tokenizer", {}).get("vocab") != events.vocab():
            raise MaestroError("checkpoint was trained with another token vocabulary", path)
        primer = np.zeros(0, np.int64)
        if request.primer is not None:
            if not Path(request.primer).is_file():
                raise MaestroError("primer file not found", request.primer)
            primer = events.encode_midi(request.primer)[1:-1].astype(np.int64)  # drop START and END
        context = model.config.max_seq_len // 2 - 2
        prompt = [events.composer_token(composer), events.START, *primer[-context:].tolist()]
        device = next(model.parameters()).device
        prompts = torch.tensor([prompt] * request.n, device=device)
        unconditional = None
        if composer != events.UNKNOWN:  # classifier-free guidance contrasts the composer with `unknown`
            unconditional = prompts.clone()
            unconditional[:, 0] = events.composer_token(events.UNKNOWN)
        hold = None
        if self.options.max_hold > 0:
            hold = NoteHold(request.n, self.options.max_hold, device=device)
            for column in prompts[:, 2:].T:  # the primer's notes may still sound
                hold.update(column)
        generator = torch.Generator(device=device).manual_seed(request.seed)
        limit = round(request.seconds * events.STEPS_PER_SECOND)
        elapsed = torch.zeros(request.n, dtype=torch.long, device=device)

        def stop(tokens: torch.Tensor) -> torch.Tensor:
            shift = (tokens >= events.TIME_SHIFT) & (tokens < events.VELOCITY)
            elapsed.add_(torch.where(shift, tokens - events.TIME_SHIFT + 1, 0))
            return (tokens == events.END) | (elapsed >= limit)

        banned = [events.PAD, events.START, *range(events.COMPOSER, events.VOCAB_SIZE)]
        new = model.generate(prompts, max_new=int(request.seconds * 200) + 64, temperature=request.temperature,
                             top_k=request.top_k, top_p=request.top_p, generator=generator, banned=banned, stop=stop,
                             unconditional=unconditional, guidance=request.guidance, constraint=hold)
        pieces = []
        for tokens in new:
            body = [t for t in tokens if t != events.END]
            pieces.append(events.decode_to_midi(np.array([*primer.tolist(), *body], np.int64)))
        return pieces

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
