"""The shared training loop with a toy trainer: stops on SIGTERM, max_minutes and Ctrl-C, best.pt, reporting."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass

import pytest

torch = pytest.importorskip("torch")

from maestro_cli.models.loop import LineReport, Training  # noqa: E402


@dataclass
class ToyConfig:
    steps: int = 6
    eval_every: int = 2
    log_every: int = 1
    grad_clip: float = 1.0
    max_minutes: float | None = None
    seed: int = 0
    threads: int = 1
    signal_at: int = 0  # the toy trainer sends itself SIGTERM (or raises Ctrl-C) in this step's batch
    interrupt: bool = False
    scores: tuple = (3.0, 1.0, 2.0)  # what the successive validations return


class Toy(Training):
    """Fits y = 2x with one weight; validation scores are scripted."""

    def build(self, state):
        model = torch.nn.Linear(1, 1, bias=False).to(self.device)
        self.validations = 0
        return model, torch.optim.SGD(model.parameters(), lr=0.1)

    def summary(self):
        return "toy"

    def lr_at(self, step):
        return 0.1

    def batch_loss(self, net):
        if self.step + 1 == self.cfg.signal_at:
            if self.cfg.interrupt:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)
        x = torch.from_numpy(self.rng.normal(size=(8, 1))).float()
        return ((net(x) - 2 * x) ** 2).mean()

    def train_entry(self, lr, loss, elapsed):
        return {"kind": "train", "step": self.step, "loss": loss}, f"loss {loss:.3f}", "detail"

    def validate(self):
        self.validations += 1
        return {"val_nll": self.cfg.scores[min(self.validations, len(self.cfg.scores)) - 1]}

    def val_entry(self, scores):
        return {"kind": "val", "step": self.step, **scores}

    def val_note(self, scores):
        return f"val {scores['val_nll']} best {self.best}"

    def checkpoint_extras(self):
        return {"model": self.model.state_dict(), "config": {}}


class Recorder(LineReport):
    def __init__(self):
        self.calls = []

    def begin(self, total, step):
        self.calls.append(("begin", total, step))

    def step(self, step, info, detail):
        self.calls.append(("step", step, info))

    def note(self, text):
        self.calls.append(("note", text))

    def end(self):
        self.calls.append(("end",))


def load(path):
    return torch.load(path, weights_only=True)


def test_best_checkpoint_log_and_report(tmp_path):
    report = Recorder()
    assert Toy(tmp_path, ToyConfig(), report).run(device="cpu") == tmp_path / "best.pt"
    best, last = load(tmp_path / "best.pt"), load(tmp_path / "last.pt")
    assert best["step"] == 4 and best["best_val"] == 1.0 and last["step"] == 6 and last["best_val"] == 1.0
    assert set(last) == {"model", "config", "step", "wall_s", "best_val", "optimizer", "train_config", "rng", "log"}
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == last["log"] and [e["step"] for e in lines if e["kind"] == "val"] == [2, 4, 6]
    assert report.calls[:3] == [("note", "toy"), ("begin", 6, 0), ("step", 1, f"loss {lines[0]['loss']:.3f}")]
    assert ("note", "val 1.0 best 1.0") in report.calls and ("note", "val 2.0 best 1.0") in report.calls
    assert report.calls[-1] == ("end",)
    assert abs(last["model"]["weight"].item() - 2) < abs(0 - 2)  # it learns


def test_sigterm_and_max_minutes_stop_cleanly_after_the_step(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    Toy(tmp_path / "term", ToyConfig(steps=100, signal_at=3), Recorder()).run(device="cpu")
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is restored
    state = load(tmp_path / "term" / "last.pt")
    assert state["step"] == 3 and state["log"][-1] == {"kind": "val", "step": 3, "val_nll": 1.0}  # validated
    Toy(tmp_path / "time", ToyConfig(steps=100, max_minutes=0.0), Recorder()).run(device="cpu")
    assert load(tmp_path / "time" / "last.pt")["step"] == 1


def test_ctrl_c_saves_the_last_step_and_the_run_resumes(tmp_path):
    report = Recorder()
    with pytest.raises(KeyboardInterrupt):
        Toy(tmp_path, ToyConfig(signal_at=4, interrupt=True), report).run(device="cpu")
    assert load(tmp_path / "last.pt")["step"] == 3
    assert report.calls[-2:] == [("note", f"interrupted at step 3; saved {tmp_path / 'last.pt'}"), ("end",)]
    Toy(tmp_path, ToyConfig(), Recorder()).run(device="cpu", resume=True)
    assert load(tmp_path / "last.pt")["step"] == 6
