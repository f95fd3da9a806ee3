"""Training throughput of every learned architecture, against this machine's measured limit.

    python benchmarks/training_throughput.py [--size 256] [--batch 8 | max] [--device cpu]
        [--models ffc,unet] [--compile]

Images per second for forward + backward + optimiser step (Adam, L1), FLOPs per image counted by
torch's FlopCounterMode, and achieved / peak against a large 3x3 convolution measured here. The data
loader is timed separately (decode, crop, augment, mask), in one process and with a worker per
core, to tell whether it would be the bottleneck. On CUDA, bf16 autocast and channels-last are used;
``--batch max`` takes the largest power-of-two batch (up to 1024) whose step fits in memory, and
``--compile`` also times each model under torch.compile (the prefill stays eager).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, median_seconds, peak_throughput, save, table  # noqa: E402

from inpaintkit.models import classical_names, count_parameters, create_model, model_names  # noqa: E402
from inpaintkit.runner import forward  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def step_fn(model, image, mask, optimizer, device):
    def step():
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = (forward(model, image, mask) - image).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def loader_rate(size: int, batch: int, workers: int) -> float | None:
    """Images per second out of a DataLoader with ``workers`` processes (0: in this process)."""
    from inpaintkit.data import InpaintDataset

    folder = SHARED / "imagenette" / "train"
    if not folder.is_dir():
        return None
    ds = InpaintDataset(folder, size, "lama-wide")
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, shuffle=True)
    batches = max(4, 2 * workers)
    iterator = iter(loader)
    next(iterator)  # workers started and warm
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start)


def largest_batch(name: str, size: int, device: str) -> int:
    """The largest power-of-two batch (8 to 1024) whose training step fits in memory."""
    best = 8
    for n in (16, 32, 64, 128, 256, 512, 1024):
        try:
            prepare(name, size, n, device)[-1]()
            best = n
        except torch.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
    return best


def prepare(name: str, size: int, batch: int, device: str, compile: bool = False):
    model = create_model(name).to(device).train()
    image = torch.rand(batch, 3, size, size, device=device)
    mask = (torch.rand(batch, 1, size, size, device=device) > 0.7).float()
    if device == "cuda":
        model = model.to(memory_format=torch.channels_last)
        image, mask = (t.contiguous(memory_format=torch.channels_last) for t in (image, mask))
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    run = model
    if compile:
        if getattr(model, "prefill", None) is not None:
            model.prefill = torch.compiler.disable(model.prefill)
        run = torch.compile(model)
    return model, step_fn(run, image, mask, optimizer, device)


def batch_arg(text: str) -> str:
    if text != "max" and not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of images or max, got {text!r}")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", default="8", type=batch_arg, help="images per step, or max (CUDA)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default=None, help="comma-separated architectures (default: all)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.batch == "max" and args.device != "cuda":
        parser.error("--batch max finds the largest batch that fits in GPU memory; give a number on the CPU")
    peak = peak_throughput(args.device, torch.bfloat16 if args.device == "cuda" else torch.float32)
    names = [n for n in model_names() if n not in classical_names() and n != "context-encoder-alexnet"]
    if args.models:
        names = [n for n in names if n in args.models.split(",")]
    rows, results = [], []
    for name in names:
        size = max(args.size, create_model(name).size_multiple)
        batch = largest_batch(name, size, args.device) if args.batch == "max" else int(args.batch)
        for compiled in (False, True) if args.compile else (False,):
            start = time.perf_counter()
            model, step = prepare(name, size, batch, args.device, compiled)
            with FlopCounterMode(display=False) as counter:
                step()
            first = time.perf_counter() - start
            flops = counter.get_total_flops() / batch
            seconds = median_seconds(step, repeats=args.repeats, warmup=1)
            rate = batch / seconds
            achieved = flops * rate / 1e9
            label = name + (" (compiled)" if compiled else "")
            results.append({"model": label, "params": count_parameters(model), "size": size, "batch": batch,
                            "img_per_s": rate, "gflop_per_img": flops / 1e9, "achieved_gflops": achieved,
                            "first_step_s": first})  # fmt: skip
            rows.append([label, f"{count_parameters(model) / 1e6:.2f}M", str(size), str(batch), f"{rate:.2f}",
                         f"{flops / 1e9:.1f}", f"{achieved:.1f}", f"{achieved / peak['conv_gflops'] * 100:.0f} %",
                         f"{first:.0f}"])  # fmt: skip
            del model, step
            if args.device == "cuda":
                torch.cuda.empty_cache()
    workers = os.cpu_count() or 1
    loader = {w: loader_rate(args.size, 8, w) for w in sorted({0, workers})}
    print(f"Training throughput, {machine()}")
    print(f"measured peak: matmul {peak['matmul_gflops']:.0f} GFLOP/s, 3x3 conv {peak['conv_gflops']:.0f} GFLOP/s\n")
    header = ["model", "params", "px", "batch", "img/s", "GFLOP/img (train)", "GFLOP/s", "of conv peak"]
    print(table(header + ["first step s"], rows))
    for w, rate in loader.items():
        if rate is not None:
            print(f"data loader, {w or 'no'} worker processes: {rate:.1f} img/s at {args.size} px")
    payload = {"peak": peak, "loader_img_per_s": {str(w): r for w, r in loader.items()}, "results": results}
    print(f"\nwritten: {save('training_throughput', payload)}")


if __name__ == "__main__":
    main()
