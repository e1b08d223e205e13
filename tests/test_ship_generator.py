"""scripts/ship_generator.py: the model card's curve, training rate and extrapolation from a training log."""

from __future__ import annotations

import importlib.util
import math

import pytest

from tests.helpers import REPO

spec = importlib.util.spec_from_file_location("ship_generator", REPO / "scripts" / "ship_generator.py")
ship = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ship)


def val(tokens: int, nll: float) -> dict:
    return {"kind": "val", "step": tokens // 1000, "tokens_seen": tokens, "wall_s": 1.0, "val_nll": nll,
            "train_loss": None}


def test_extrapolation_fits_the_running_best_over_the_last_doublings_of_tokens():
    log = [val(2 ** k, 6.0 - 0.2 * k) for k in range(20, 27)]
    log.insert(4, val(2 ** 23 + 1, 9.0))  # a warm restart's bump: the running best ignores it
    fit = ship.extrapolate(log, {"goal": 6.0 - 0.2 * 30}, doublings=5)
    assert fit["per_doubling"] == pytest.approx(-0.2) and fit["from_tokens"] == 2 ** 21
    assert math.log2(fit["tokens"]["goal"]) == pytest.approx(30)
    log += [val(2 ** 27, 0.7), val(2 ** 28, 0.6)]  # the curve flattens: 0.1 per doubling
    recent = ship.extrapolate(log, {"goal": 0.3})
    assert recent["per_doubling"] == pytest.approx(-0.1) and recent["from_tokens"] == 2 ** 27
    assert math.log2(recent["tokens"]["goal"]) == pytest.approx(31)
    rising = ship.extrapolate([val(2 ** k, 3.0 + 0.01 * k) for k in range(22, 25)], {"goal": 2.0})
    assert rising["tokens"]["goal"] is None  # a flat curve never reaches a lower target


def test_curve_rows_and_training_rate_read_the_log():
    log = [val(1000 * i, 3.0) for i in range(1, 8)]
    log += [{"kind": "train", "tok_s": rate} for rate in (100, 5000, 5200, 5100)]
    assert [row["step"] for row in ship.curve_rows(log, 3)] == [1, 4, 7]  # every third, and the last
    assert ship.training_rate(log, last=3) == 5100


def test_card_says_when_the_fit_spans_a_run_grown_from_earlier_weights():
    fit = ship.extrapolate([val(2 ** k, 6.0 - 0.1 * k) for k in range(24, 28)], {"test 2.0": 3.0})
    metrics = {"test_nll": {"nll_per_event": 3.3}, "val_nll_windows": 3.4, "training_tok_s": 2000.0,
               "tokens_seen": 2 ** 27, "generate_chopin_4x30s": {"wall_s": 50.0, "peak_rss_mb": 600,
                                                                  "load_average": 2.0},
               "extrapolation": {**fit, "run_from_tokens": 2 ** 26 + 2 ** 25}}
    text = "\n".join(ship.progress_lines(metrics, None, {"n_layer": 8, "d_model": 256}, 2 ** 24))
    assert "spans this run's start from init weights at 101 M tokens" in text
    assert "0.100 nats/event per doubling" in text and "about 1,074 M tokens in all (64.0 epochs)" in text
    metrics["extrapolation"]["run_from_tokens"] = 2 ** 25  # grown before the fitted doubling: nothing to say
    assert "spans" not in "\n".join(ship.progress_lines(metrics, None, {"n_layer": 8, "d_model": 256}, 2 ** 24))
