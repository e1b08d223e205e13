"""What every trainer shares: device choice, process-group set-up for torchrun, checkpoint files."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA, else MPS, else CPU), ``cpu``, ``cuda`` or ``mps``; a ValueError if unavailable."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device '{name}'; expected auto, cpu, cuda or mps")
    if (name == "cuda" and not torch.cuda.is_available()) or (name == "mps" and not torch.backends.mps.is_available()):
        raise ValueError(f"device '{name}' is not available on this machine")
    return torch.device(name)


def setup_process(device: str, threads: int) -> tuple[torch.device, bool, int]:
    """The device, whether this is a DDP run under torchrun, and this process's rank.

    Under torchrun (``WORLD_SIZE`` > 1) the process group is initialised: NCCL on CUDA, gloo otherwise.
    """
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    dev = pick_device(device)
    if ddp:
        import torch.distributed as dist

        if dev.type == "cuda":
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    if threads > 0:
        torch.set_num_threads(threads)
    return dev, ddp, rank


def save_atomic(obj: dict, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


CHECKPOINT_NAMES = ("model.pt", "best.pt", "last.pt")


def find_checkpoint(path: Path) -> Path:
    """A ``.pt`` file, or the first of model.pt / best.pt / last.pt in a folder."""
    path = Path(path)
    if path.is_dir():
        for name in CHECKPOINT_NAMES:
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"no {', '.join(CHECKPOINT_NAMES)} in {path}")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path
