"""Ship an onsets-frames run as the default transcription model under models/<name>/.

Among the candidate checkpoints (default ``<run>/best.pt``), picks the one and the decoding thresholds with
the best note F1 on held-out renders: the run's validation-split pieces rendered with FluidR3_GM, a soundfont
the model never trained on (``--tune-on validation`` uses the run's own validation excerpts instead).
``--average`` adds one more candidate: the mean of the candidates' weights (snapshots of one run a few hundred
steps apart; smoother than any one of them). The test recordings are never used. Writes ``model.pt``
(weights + config, no optimizer) and ``config.json``. The scores
for MODEL_CARD.md come from ``benchmarks/transcribe.py`` run afterwards. Run from the repository root:

    .venv/bin/python scripts/ship_transcriber.py --run /work/runs/transcriber --cache /work/runs/of-data \\
        --data ../shared/data/maestro-v2.0.0-midi --checkpoint snapshots/step6000.pt --checkpoint last.pt --average
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from maestro_cli.models import onsets_frames_train as oft
from maestro_cli.models.onsets_frames import load_model
from maestro_cli.models.onsets_frames_data import DataConfig, build_held_out
from maestro_cli.models.runtime import find_checkpoint

REPO = Path(__file__).resolve().parents[1]


def average_weights(sources: list[Path], out: Path) -> Path:
    """Write the last source's checkpoint with the element-wise mean of all sources' weights to ``out``."""
    states = [torch.load(find_checkpoint(source), map_location="cpu", weights_only=True) for source in sources]
    averaged = dict(states[-1])
    averaged["model"] = {name: (sum(state["model"][name].double() for state in states) / len(states)).to(value.dtype)
                         for name, value in states[-1]["model"].items()}
    torch.save(averaged, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True, help="the run's excerpt cache (validation split)")
    parser.add_argument("--data", type=Path, help="the MAESTRO root the cache was built from (for --tune-on held-out)")
    parser.add_argument("--tune-on", choices=("held-out", "validation"), default="held-out")
    parser.add_argument("--name", default="maestro-onsets-frames")
    parser.add_argument("--checkpoint", action="append", help="candidate (relative to --run, or a path); repeatable")
    parser.add_argument("--average", action="store_true", help="also score the mean of the candidates' weights")
    parser.add_argument("--dry-run", action="store_true", help="score the candidates, ship nothing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    split = "validation"
    if args.tune_on == "held-out":
        if args.data is None:
            parser.error("--tune-on held-out needs --data")
        manifest = json.loads((args.cache / "manifest.json").read_text())
        build_held_out(args.data, args.cache, DataConfig(**manifest["config"]))
        split = "validation-held-out"
    excerpts = oft.load_excerpts(args.cache, split)
    sources = [args.run / name for name in args.checkpoint or ["best.pt"]]  # an absolute name stays as it is
    with tempfile.TemporaryDirectory() as tmp:
        candidates = {str(source): source for source in sources}
        if args.average and len(sources) > 1:
            mean = f"mean of {', '.join(map(str, sources))}"
            candidates[mean] = average_weights(sources, Path(tmp) / "average.pt")
        results = []
        for label, source in candidates.items():
            config, f1 = oft.tune_thresholds(load_model(source), excerpts)
            print(json.dumps({"candidate": label, "onset_threshold": config.onset_threshold,
                              "frame_threshold": config.frame_threshold, f"{split}_note_f1": round(f1, 4)}))
            results.append((f1, label, config))
        if args.dry_run:
            return
        f1, label, config = max(results, key=lambda r: r[0])
        path = oft.export_model(candidates[label], REPO / "models" / args.name, config)
    state = torch.load(path, weights_only=True)
    print(json.dumps({"model": str(path), "from": label, "step": state["step"], "wall_s": round(state["wall_s"]),
                      "params": state["params"], "validation_note_f1_at_0.5": round(state["best_f1"], 4),
                      "onset_threshold": config.onset_threshold, "frame_threshold": config.frame_threshold,
                      f"{split}_note_f1_tuned": round(f1, 4), "bytes": path.stat().st_size}))


if __name__ == "__main__":
    main()
