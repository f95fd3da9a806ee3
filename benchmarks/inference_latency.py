"""Inference latency of a model against OpenCV Telea, Navier-Stokes and PatchMatch on the same image and mask.

    python benchmarks/inference_latency.py [--model default] [--compile] [--repeats 5]

Median of repeated runs after warm-up, at 256, 512 and 1024 px squares of a real photo with a
LaMa-thick mask, at 256 and 512 px also with a LaMa-thin one (thin strokes across the photo, the
case where PatchMatch's time grows most), and a 12-megapixel photo (4000x3000) with a ~5 % hole
through the crop strategy, with the network at the default `--max-side` (1024) and at 768.
Backends: torch eager, torch channels-last, "served" (what the CLI and the app run: channels-last
with BatchNorm folded into the convolutions), ONNX Runtime, and torch.compile with --compile. Peak
resident memory is measured in a fresh process per size. The limit: the model's FLOPs per fill
(convolutions and matrix products, as torch's FlopCounterMode counts them) over the fastest path's
time, against a large 3x3 convolution measured on this machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, median_seconds, peak_throughput, save, table  # noqa: E402

from inpaintkit.export import OnnxModel, export_onnx  # noqa: E402
from inpaintkit.inference import InpaintOptions, inpaint_array, select_device  # noqa: E402
from inpaintkit.loading import load_model  # noqa: E402
from inpaintkit.masks import MaskGenerator  # noqa: E402


def photo(size: tuple[int, int]) -> np.ndarray:
    import skimage.data

    base = skimage.data.astronaut()
    return cv2.resize(base, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


def case(size: tuple[int, int], masks: str | None = "lama-thick") -> tuple[np.ndarray, np.ndarray]:
    h, w = size
    if h * w > 4e6:  # the 12-megapixel case: one hole of about 5 %
        hole = np.zeros(size, bool)
        side = int((0.05 * h * w) ** 0.5)
        hole[h // 3 : h // 3 + side, w // 2 : w // 2 + side] = True
        return photo(size), hole
    return photo(size), MaskGenerator(masks).sample(0, h, w, seed=1) > 0.5


def peak_memory_mb(model: str, size: tuple[int, int], max_side: int, masks: str | None) -> float:
    """Peak RSS of a fresh process that loads the model and fills one image of ``size``.

    Read from /proc (VmHWM): ``ru_maxrss`` would include this process's own peak, which a child
    inherits at fork on Linux."""
    code = (
        "import sys; sys.path.insert(0, 'benchmarks');"
        "from inference_latency import case; from inpaintkit.loading import load_model;"
        "from inpaintkit.inference import InpaintOptions, inpaint_array;"
        f"m = load_model({model!r}); img, hole = case({size!r}, {masks!r});"
        f"inpaint_array(m, img, hole, InpaintOptions(max_side={max_side}));"
        "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def time_fill(model, image, hole, strategy: str, max_side: int, repeats: int) -> float:
    options = InpaintOptions(strategy=strategy, max_side=max_side)
    return median_seconds(lambda: inpaint_array(model, image, hole, options), repeats)


def main() -> None:
    from torch.utils.flop_counter import FlopCounterMode  # here: the memory probes import this module

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="a name or weights file")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = load_model(args.model).eval()
    backends = {"torch eager": model}
    if model.exportable:
        backends["ONNX Runtime"] = OnnxModel(export_onnx(model, Path("benchmarks/results") / "model.onnx"))
    else:
        print(f"ONNX Runtime not timed: {model.not_exportable_because}")
    backends["torch channels-last"] = load_model(args.model).eval().to(memory_format=torch.channels_last)
    backends["served"] = select_device(load_model(args.model), "cpu")  # the CLI's and app's path
    if args.compile:
        compiled = load_model(args.model).eval()
        if getattr(compiled, "prefill", None) is not None:  # its size-dependent loops stay eager
            compiled.prefill = torch.compiler.disable(compiled.prefill)
        backends["torch.compile"] = torch.compile(compiled)
        backends["torch.compile"].size_multiple = model.size_multiple
        backends["torch.compile"].task = model.task
    classical = {name: load_model(name) for name in ("telea", "navier-stokes", "patchmatch")}
    peak = peak_throughput()
    cases = [
        ("256x256", (256, 256), 1024, "lama-thick"),
        ("512x512", (512, 512), 1024, "lama-thick"),
        ("256x256, lama-thin", (256, 256), 1024, "lama-thin"),
        ("512x512, lama-thin", (512, 512), 1024, "lama-thin"),
        ("1024x1024", (1024, 1024), 1024, "lama-thick"),
        ("12 MP, 5 % hole", (3000, 4000), 1024, None),
        ("12 MP, 5 % hole, max side 768", (3000, 4000), 768, None),
    ]
    rows, results = [], []
    for label, size, max_side, masks in cases:
        image, hole = case(size, masks)
        strategy = "crop" if size[0] * size[1] > 4e6 else "original"
        methods = {**backends, **classical}
        timing = {name: time_fill(m, image, hole, strategy, max_side, args.repeats) for name, m in methods.items()}
        best = min((t, n) for n, t in timing.items() if n not in classical)
        memory = peak_memory_mb(args.model, size, max_side, masks)
        with FlopCounterMode(display=False) as counter:
            inpaint_array(model, image, hole, InpaintOptions(strategy=strategy, max_side=max_side))
        gflop = counter.get_total_flops() / 1e9
        results.append({"size": label, "seconds": timing, "fastest": best[1], "peak_rss_mb": memory, "gflop": gflop})
        rows.append(
            [label]
            + [f"{timing[n]:.3f}" for n in timing]
            + [best[1], f"{best[0] / timing['telea']:.1f}x", f"{gflop:.1f}"]
            + [f"{gflop / best[0] / peak['conv_gflops'] * 100:.0f} %", f"{memory:.0f}"]
        )
    header = ["image"] + list(results[0]["seconds"]) + ["fastest model path", "model / Telea", "GFLOP"]
    header += ["of conv peak", "peak RSS MB"]
    print(f"Inference latency in seconds (median of {args.repeats}), {machine()}")
    print(f"measured 3x3 conv peak: {peak['conv_gflops']:.0f} GFLOP/s\n")
    print(table(header, rows))
    print(f"\nwritten: {save('inference_latency', {'model': args.model, 'peak': peak, 'results': results})}")


if __name__ == "__main__":
    main()
