"""Ship an onsets-frames run as the default transcription model under models/<name>/.

Takes ``<run>/best.pt`` (highest validation note F1), picks the decoding thresholds with the best note F1 on
the run's validation excerpts (synthesized validation-split pieces, never the test recordings), and writes
``model.pt`` (weights + config, no optimizer) and ``config.json``. The scores for MODEL_CARD.md come from
``benchmarks/transcribe.py`` run afterwards. Run from the repository root:

    .venv/bin/python scripts/ship_transcriber.py --run /work/runs/transcriber --cache /work/runs/of-data
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from maestro_cli.models import onsets_frames_train as oft
from maestro_cli.models.onsets_frames import load_model

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True, help="the run's excerpt cache (validation split)")
    parser.add_argument("--name", default="maestro-onsets-frames")
    parser.add_argument("--checkpoint", default="best.pt")
    args = parser.parse_args()
    torch.set_num_threads(1)
    source = args.run / args.checkpoint
    model = load_model(source)
    config, f1 = oft.tune_thresholds(model, oft.load_excerpts(args.cache, "validation"))
    path = oft.export_model(source, REPO / "models" / args.name, config)
    state = torch.load(path, weights_only=True)
    print(json.dumps({"model": str(path), "step": state["step"], "wall_s": round(state["wall_s"]),
                      "params": state["params"], "validation_note_f1_at_0.5": round(state["best_f1"], 4),
                      "onset_threshold": config.onset_threshold, "frame_threshold": config.frame_threshold,
                      "validation_note_f1_tuned": round(f1, 4), "bytes": path.stat().st_size}))


if __name__ == "__main__":
    main()
