"""Training throughput of every learned architecture, against this machine's measured limit.

    python benchmarks/training_throughput.py [--size 256] [--batch 8] [--device cpu]

Images per second for forward + backward + optimiser step (Adam, L1), FLOPs per image counted by
torch's FlopCounterMode, and achieved / peak against a large 3x3 convolution measured here. The data
loader is timed separately (decode, crop, augment, mask) to tell whether it would be the bottleneck.
On CUDA, bf16 autocast and channels-last are used.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, median_seconds, peak_throughput, save, table  # noqa: E402

from inpaintkit.models import CLASSICAL, count_parameters, create_model, model_names  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def step_fn(model, image, mask, optimizer, device):
    def step():
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = (model(image, mask) - image).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def loader_rate(size: int, batch: int) -> float | None:
    from inpaintkit.data import InpaintDataset

    folder = SHARED / "imagenette" / "train"
    if not folder.is_dir():
        return None
    ds = InpaintDataset(folder, size, "lama-wide")
    start = time.perf_counter()
    count = 4 * batch
    for i in range(count):
        ds[i]
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    peak = peak_throughput(args.device, torch.bfloat16 if args.device == "cuda" else torch.float32)
    rows, results = [], []
    for name in model_names():
        if name in CLASSICAL or name == "context-encoder-alexnet":
            continue
        model = create_model(name).to(args.device).train()
        size = max(args.size, model.size_multiple)
        image = torch.rand(args.batch, 3, size, size, device=args.device)
        mask = (torch.rand(args.batch, 1, size, size, device=args.device) > 0.7).float()
        if args.device == "cuda":
            model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), 1e-4)
        step = step_fn(model, image, mask, optimizer, args.device)
        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops() / args.batch
        seconds = median_seconds(step, repeats=args.repeats, warmup=1)
        rate = args.batch / seconds
        achieved = flops * rate / 1e9
        results.append({"model": name, "params": count_parameters(model), "size": size, "img_per_s": rate,
                        "gflop_per_img": flops / 1e9, "achieved_gflops": achieved})  # fmt: skip
        rows.append([name, f"{count_parameters(model) / 1e6:.2f}M", str(size), f"{rate:.2f}", f"{flops / 1e9:.1f}",
                     f"{achieved:.1f}", f"{achieved / peak['conv_gflops'] * 100:.0f} %"])  # fmt: skip
        del model, optimizer
    loader = loader_rate(args.size, args.batch)
    print(f"Training throughput, batch {args.batch}, {machine()}")
    print(f"measured peak: matmul {peak['matmul_gflops']:.0f} GFLOP/s, 3x3 conv {peak['conv_gflops']:.0f} GFLOP/s\n")
    print(table(["model", "params", "px", "img/s", "GFLOP/img (train)", "GFLOP/s", "of conv peak"], rows))
    if loader is not None:
        print(f"\ndata loader (one process): {loader:.1f} img/s at {args.size} px")
    print(f"\nwritten: {save('training_throughput', {'peak': peak, 'loader_img_per_s': loader, 'results': results})}")


if __name__ == "__main__":
    main()
