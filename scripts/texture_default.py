"""Make the bundled default textured: the current default network's structure with PatchMatch's
texture (``ffc-textured``), keeping the network's weights and its card's training record.

    python scripts/texture_default.py --sigma 1 --texture-sigma 2.5 --texture 1 --reach 16 --deep-sigma 8 \
        --patch-size 2 --bench B-bsds --bench B-celeba

Writes inpaintkit/weights/default.safetensors and default.json; run it once on an ``ffc`` default.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from inpaintkit.loading import bundled_weights
from inpaintkit.models import create_model, load_weights, save_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigma", type=float, required=True, help="px of the Gaussian that blurs the network")
    parser.add_argument("--texture-sigma", type=float, required=True, help="px of PatchMatch's high-pass")
    parser.add_argument("--texture", type=float, required=True, help="weight of PatchMatch's high frequencies")
    parser.add_argument("--reach", type=float, required=True, help="px around the hole whose detail energy caps it")
    parser.add_argument("--deep-sigma", type=float, required=True, help="px into the hole where the deep fill starts")
    parser.add_argument("--patch-size", type=int, required=True, help="radius of PatchMatch's patches")
    parser.add_argument(
        "--bench", type=Path, action="append", default=[], help="bench folders of this model (written with --out first)"
    )
    parser.add_argument("--tuning", default="", help="how sigma and texture were chosen")
    parser.add_argument("--out", type=Path, default=bundled_weights(), help="where to write (default: bundled)")
    args = parser.parse_args()
    current = load_weights(bundled_weights())
    network = current.network if current.config["model"] == "ffc-textured" else current
    if network.config["model"] != "ffc":
        parser.error(f"the bundled default is {current.config['model']!r}, not an ffc network to texture")
    model = create_model(
        "ffc-textured",
        **{k: v for k, v in network.config["kwargs"].items() if k != "out_channels"},  # always 3 here
        sigma=args.sigma,
        texture_sigma=args.texture_sigma,
        texture=args.texture,
        reach=args.reach,
        deep_sigma=args.deep_sigma,
        patch_size=args.patch_size,
    ).eval()
    model.network.load_state_dict(network.state_dict())
    card = {k: v for k, v in current.card.items() if k not in ("format", "model", "kwargs", "parameters", "bench")}
    card["texture"] = {
        "method": "blur(degrid(network), sigma) + texture * w * (patchmatch - blur(patchmatch, texture_sigma)), "
        "degrid removing the network's period-8 grid, w matching the detail's local energy to the known pixels' "
        "(above sigma) within reach px; deeper than deep_sigma px into the hole, fading in over 2 deep_sigma px: "
        "blur(degrid(network), deep_sigma) + patchmatch - blur(patchmatch, deep_sigma); PatchMatch: PyPatchMatch "
        f"2.2, patch radius {args.patch_size}, seed 0, on the hole's bounding window",
        "sigma": args.sigma,
        "texture_sigma": args.texture_sigma,
        "texture": args.texture,
        "reach": args.reach,
        "deep_sigma": args.deep_sigma,
        "patch_size": args.patch_size,
        "tuning": args.tuning,
    }
    card["bench"] = {}
    for folder in args.bench:
        report = json.loads((folder / "results.json").read_text())
        card["bench"][folder.name] = {
            "protocol": report["protocol"], "preparation": report["preparation"], "images": len(report["images"]),
            "results": [{**row, "method": "default"} for row in report["results"]],
        }  # fmt: skip
    target = save_model(model, args.out, card)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB) and {target.with_suffix('.json')}")


if __name__ == "__main__":
    main()
