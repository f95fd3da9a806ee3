"""Bundle a training run's best model as the package's default weights, with its card.

    python scripts/bundle_default.py runs/flagship-cpu --bench B-bsds --bench B-celeba \\
        --hardware "2-core AMD EPYC CPU" --hours 1.4

Writes inpaintkit/weights/default.safetensors and default.json (architecture and arguments, the
recipe, training data and steps, hardware and time, and every bench's per-bin numbers).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from inpaintkit.models import load_weights, save_model

TARGET = Path(__file__).resolve().parents[1] / "inpaintkit" / "weights" / "default.safetensors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--bench", type=Path, action="append", default=[], help="bench output folders")
    parser.add_argument("--hardware", required=True)
    parser.add_argument("--hours", type=float, required=True)
    parser.add_argument("--history", default="", help="how the run's starting weights were made (init chains)")
    args = parser.parse_args()
    model = load_weights(args.run / "model.safetensors")
    card = dict(model.card)
    for key in ("format", "model", "kwargs", "parameters"):
        card.pop(key, None)
    card["training"] = {
        "run": args.run.name,
        "data": card["recipe"]["data"],
        "validation": card["recipe"]["val_data"],
        "batches": card.get("batches"),
        "batch_size": card["recipe"]["batch_size"],
        "crop": card["recipe"]["size"],
        "hardware": args.hardware,
        "hours": args.hours,
        "command": (args.run / "command.txt").read_text().strip(),
        "history": args.history,
    }
    card["bench"] = {}
    for folder in args.bench:
        report = json.loads((folder / "results.json").read_text())
        card["bench"][folder.name] = {
            "protocol": report["protocol"], "preparation": report["preparation"], "images": len(report["images"]),
            "results": report["results"],
        }  # fmt: skip
    save_model(model, TARGET, card)
    print(f"wrote {TARGET} ({TARGET.stat().st_size / 1e6:.1f} MB) and {TARGET.with_suffix('.json')}")


if __name__ == "__main__":
    main()
