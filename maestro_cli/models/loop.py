"""The one training loop behind ``maestro train``: what training any model involves besides its data and loss.

A trainer subclasses :class:`Training` and supplies its model and optimizer, the loss of a batch, validation, and
the extras of its log entries and checkpoints. :meth:`Training.run` does the rest, the same way for every model:

- ``--resume`` from ``<out>/last.pt`` restores model, optimizer, counters and every RNG, so that a resumed run
  matches an uninterrupted one bit for bit;
- under ``torchrun`` the loop runs data-parallel (DDP; gloo on CPU, nccl on CUDA): every rank trains, rank 0
  validates, logs, saves and reports;
- SIGTERM and ``max_minutes`` stop it cleanly after the current step (validated and saved), Ctrl-C saves
  ``last.pt`` before it propagates;
- a validation every ``eval_every`` steps and at the end writes ``last.pt``, and ``best.pt`` when the score
  improves, both atomically; every log entry is appended to ``metrics.jsonl`` and kept in the checkpoint;
- progress goes to a reporter: plain lines on stderr by default (the CLI passes a live bar on a terminal).
"""

from __future__ import annotations

import json
import math
import random
import signal
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch

from maestro_cli.models.runtime import save_atomic, setup_process


def stored_config(checkpoint: Path, config_class) -> dict:
    """The training options a checkpoint was trained with (fields ``config_class`` does not know are dropped)."""
    stored = torch.load(checkpoint, map_location="cpu", weights_only=True).get("train_config", {})
    known = {field.name for field in fields(config_class)}
    return {key: value for key, value in stored.items() if key in known}


def resumed_config(cfg, given: list[str], checkpoint: Path):
    """A resumed run's options: those stored in ``checkpoint``, overridden by the ``given`` ``key=value`` options
    (``cfg`` is them parsed and validated)."""
    keys = {item.split("=", 1)[0].strip().replace("-", "_") for item in given}
    return type(cfg)(**{**stored_config(checkpoint, type(cfg)), **{key: getattr(cfg, key) for key in keys}})


class LineReport:
    """The default reporter: plain lines on stderr.

    A reporter has ``begin(total, step)``, ``step(step, info, detail)`` (every ``log_every`` steps; a live bar
    may show ``info`` only), ``note(text)`` and ``end()``; only rank 0 reports.
    """

    total = 0

    def begin(self, total: int, step: int) -> None:
        self.total = total

    def step(self, step: int, info: str, detail: str) -> None:
        print(f"step {step}/{self.total} {info} {detail}", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def end(self) -> None:
        pass


def utc_now() -> str:
    """The time stamp of a validation log entry."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Training:
    """One training run in folder ``out``; a trainer fills in the hooks below :meth:`run`.

    ``cfg`` is the trainer's options dataclass (saved as ``train_config``); the loop reads its ``steps``,
    ``eval_every``, ``log_every``, ``grad_clip``, ``max_minutes``, ``seed`` and ``threads``. The hooks see the
    loop's state as attributes: ``step``, ``wall_s``, ``best``, ``log``, ``rng`` (this rank's numpy generator),
    ``device``, ``main`` (rank 0), ``end`` (the last step of this invocation), ``model`` and ``optimizer``.
    """

    best_key = "best_val"  # the checkpoint key of the best validation score
    score_key = "val_nll"  # the validation score that picks best.pt ...
    minimize = True  # ... lower is better
    best = math.inf  # the best score before any validation
    smoothing = 0.1  # weight of the newest batch in the logged, exponentially smoothed training loss

    def __init__(self, out: Path, cfg, report=None):
        self.out, self.cfg = Path(out), cfg
        self.report = report or LineReport()
        self.last_path, self.best_path = self.out / "last.pt", self.out / "best.pt"
        self.step, self.wall_s, self.log = 0, 0.0, []

    def run(self, *, resume: bool = False, device: str = "auto", stop_after: int | None = None) -> Path:
        """Train (or resume) to the run's last step; returns the path of the best checkpoint (else the last).

        ``stop_after`` ends this invocation after that step (the schedule still targets the whole run).
        """
        cfg = self.cfg
        self.device, ddp, rank = setup_process(device, cfg.threads)
        self.main = rank == 0
        self.out.mkdir(parents=True, exist_ok=True)
        state = None
        if resume:
            if not self.last_path.is_file():
                raise FileNotFoundError(f"nothing to resume: {self.last_path} does not exist")
            state = torch.load(self.last_path, map_location="cpu", weights_only=True)
        torch.manual_seed(cfg.seed + rank)
        self.model, self.optimizer = self.build(state)
        self.rng = np.random.default_rng(cfg.seed + rank)
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.step, self.wall_s, self.best = state["step"], state["wall_s"], state[self.best_key]
            self.log = list(state["log"])
            if self.main:
                self.set_rng_state(state["rng"])
            self.restore(state)
        net = self.model
        if ddp:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda"
                                          else None)
        total = self.total_steps()
        self.end = min(total, stop_after) if stop_after else total
        if self.main:
            self.report.note(self.summary())
            self.report.begin(total, self.step)

        stop = {"now": False}
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True)) if self.main and not ddp else None
        self.model.train()
        invoked = began = logged = time.time()
        loss_ema, evaluated = None, self.step
        try:
            while self.step < self.end and not stop["now"]:
                lr = self.lr_at(self.step)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                loss = self.batch_loss(net)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.step += 1
                now = time.time()
                self.wall_s += now - began
                began = now
                value = loss.item()
                loss_ema = value if loss_ema is None else (1 - self.smoothing) * loss_ema + self.smoothing * value
                if self.main and self.step % cfg.log_every == 0:
                    entry, info, detail = self.train_entry(lr, loss_ema, now - logged)
                    logged = now
                    self.record(entry)
                    self.report.step(self.step, info, detail)
                if self.main and self.step % cfg.eval_every == 0:
                    self._evaluate()
                    evaluated = self.step
                if cfg.max_minutes is not None and now - invoked >= cfg.max_minutes * 60:
                    stop["now"] = True
            if self.main and evaluated != self.step:
                self._evaluate()
        except KeyboardInterrupt:
            if self.main:
                self._save(None)
                self.report.note(f"interrupted at step {self.step}; saved {self.last_path}")
            raise
        finally:
            if self.main:
                self.report.end()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if ddp:
                import torch.distributed as dist

                dist.destroy_process_group()
        return self.best_path if self.best_path.is_file() else self.last_path

    def _evaluate(self) -> None:
        scores = self.validate()
        self.record(self.val_entry(scores))
        self._save(scores[self.score_key])
        self.report.note(self.val_note(scores))

    def _save(self, score: float | None) -> None:
        """``last.pt``, and ``best.pt`` too when ``score`` beats the best so far."""
        improved = score is not None and (score < self.best if self.minimize else score > self.best)
        if improved:
            self.best = score
        payload = {**self.checkpoint_extras(), "step": self.step, "wall_s": self.wall_s, self.best_key: self.best,
                   "optimizer": self.optimizer.state_dict(), "train_config": asdict(self.cfg),
                   "rng": self.rng_state(), "log": self.log}
        if improved:
            save_atomic(payload, self.best_path)
        save_atomic(payload, self.last_path)
        self.saved(payload)

    def record(self, entry: dict) -> None:
        """Keep a log entry in the checkpoint's ``log`` and append it to ``metrics.jsonl``."""
        self.log.append(entry)
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")

    def rng_state(self) -> dict:
        """The RNG states saved in a checkpoint (numpy, torch and Python's)."""
        return {"numpy": self.rng.bit_generator.state, "torch": torch.get_rng_state(),
                "python": list(random.getstate())}

    def set_rng_state(self, saved: dict) -> None:
        self.rng.bit_generator.state = saved["numpy"]
        torch.set_rng_state(saved["torch"])
        random.setstate(tuple(saved["python"]))

    # ---------------------------------------------------------------------------------------- the trainer's part

    def build(self, state: dict | None) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        """The model on ``self.device`` (shaped as ``state``'s when resuming, else from the options or ``init``
        weights) and its optimizer; :meth:`run` then loads ``state``'s weights and optimizer state."""
        raise NotImplementedError

    def restore(self, state: dict) -> None:
        """Restore the trainer's own counters from a resumed checkpoint."""

    def total_steps(self) -> int:
        """The step the run (and its learning-rate schedule) ends at."""
        return self.cfg.steps

    def summary(self) -> str:
        """The line reported before training starts."""
        raise NotImplementedError

    def lr_at(self, step: int) -> float:
        raise NotImplementedError

    def batch_loss(self, net: torch.nn.Module) -> torch.Tensor:
        """The loss of one fresh training batch through ``net`` (the model, DDP-wrapped under torchrun)."""
        raise NotImplementedError

    def train_entry(self, lr: float, loss: float, elapsed: float) -> tuple[dict, str, str]:
        """The training log entry (smoothed ``loss``; ``elapsed`` seconds since the previous one) and the
        reporter's ``info`` and ``detail``."""
        raise NotImplementedError

    def validate(self) -> dict[str, float]:
        """The validation scores (``score_key`` among them); leaves the model in training mode."""
        raise NotImplementedError

    def val_entry(self, scores: dict[str, float]) -> dict:
        raise NotImplementedError

    def val_note(self, scores: dict[str, float]) -> str:
        """The line reported after a validation (``self.best`` already counts it)."""
        raise NotImplementedError

    def checkpoint_extras(self) -> dict:
        """What a checkpoint holds besides the loop's state: at least ``model`` and ``config``."""
        raise NotImplementedError

    def saved(self, payload: dict) -> None:
        """Called after every checkpoint, with its contents."""
