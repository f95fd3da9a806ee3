"""Batched inference throughput of a model: images per second against the batch size.

    python benchmarks/batch_throughput.py [--model default] [--size 256] [--batches 1,16,64,256]
        [--device cuda] [--compile]

The network alone (prefill included, no file decoding) on real photo crops with LaMa-thick masks,
a different mask per image; median of repeated runs after warm-up. Paths: fp32, and on CUDA bf16
autocast with channels-last, and with --compile the same compiled (the prefill, whose loops depend
on the size, stays eager). The limit: FLOPs per image (convolutions and matrix products, as torch's
FlopCounterMode counts them) times the rate, against a large 3x3 convolution measured here.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, median_seconds, peak_throughput, save, table  # noqa: E402
from inference_latency import photo  # noqa: E402

from inpaintkit.loading import load_model  # noqa: E402
from inpaintkit.masks import MaskGenerator  # noqa: E402


def batch(size: int, count: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` crops of a real photo, each with its own LaMa-thick hole (zeroed in the input)."""
    base = torch.from_numpy(photo((2 * size, 2 * size))).permute(2, 0, 1).float() / 255
    rng = np.random.default_rng(0)
    crops, holes = [], []
    generator = MaskGenerator("lama-thick")
    for i in range(count):
        top, left = rng.integers(0, size + 1, size=2)
        crops.append(base[:, top : top + size, left : left + size])
        holes.append(torch.from_numpy(generator.sample(i, size, size, seed=1))[None])
    image, mask = torch.stack(crops).to(device), torch.stack(holes).float().to(device)
    return image * (1 - mask), mask


def batch_sizes(text: str) -> list[int]:
    parts = text.split(",")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return [int(p) for p in parts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="a name or weights file")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batches", default=None, type=batch_sizes, help="comma-separated batch sizes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cuda = args.device == "cuda"
    sizes = args.batches or batch_sizes("1,16,64,256,512" if cuda else "1,4,16")
    torch.set_grad_enabled(False)

    def build(channels_last: bool):
        model = load_model(args.model, untrained=True).eval().to(args.device)
        return model.to(memory_format=torch.channels_last) if channels_last else model

    paths = {"fp32": (build(False), False)}
    if cuda:
        paths["bf16 channels-last"] = (build(True), True)
    if args.compile:
        compiled = build(cuda)
        if getattr(compiled, "prefill", None) is not None:
            compiled.prefill = torch.compiler.disable(compiled.prefill)
        paths["bf16 channels-last compiled" if cuda else "compiled"] = (torch.compile(compiled), cuda)
    peak = peak_throughput(args.device, torch.bfloat16 if cuda else torch.float32)
    with FlopCounterMode(display=False) as counter:
        paths["fp32"][0](*batch(args.size, 1, args.device))
    gflop = counter.get_total_flops() / 1e9

    rows, results = [], []
    for n in sizes:
        image, mask = batch(args.size, n, args.device)
        for name, (model, half) in paths.items():
            x, m = (t.contiguous(memory_format=torch.channels_last) for t in (image, mask)) if half else (image, mask)
            autocast = torch.autocast("cuda", dtype=torch.bfloat16) if half else contextlib.nullcontext()
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            try:
                with autocast:
                    seconds = median_seconds(lambda model=model, x=x, m=m: model(x, m), repeats=args.repeats)
            except torch.OutOfMemoryError:
                rows.append([str(n), name, "out of memory", "", "", ""])
                torch.cuda.empty_cache()
                continue
            rate = n / seconds
            memory = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
            share = gflop * rate / peak["conv_gflops"] * 100
            results.append({"batch": n, "path": name, "img_per_s": rate, "peak_mb": memory, "of_conv_peak": share})
            rows.append(
                [str(n), name, f"{rate:.1f}", f"{1000 / rate:.2f}", f"{share:.0f} %", f"{memory:.0f}" if cuda else "-"]
            )
    print(f"Batched inference, {args.model} at {args.size} px, {machine()}")
    print(f"{gflop:.1f} GFLOP per image; measured 3x3 conv peak {peak['conv_gflops'] / 1000:.1f} TFLOP/s\n")
    print(table(["batch", "path", "img/s", "ms/img", "of conv peak", "GPU peak MB"], rows))
    written = save("batch_throughput", {"model": args.model, "size": args.size, "gflop": gflop, "peak": peak,
                                         "results": results})  # fmt: skip
    print(f"\nwritten: {written}")


if __name__ == "__main__":
    main()
