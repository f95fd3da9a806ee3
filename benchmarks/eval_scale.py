"""Evaluation at scale: seconds per image of `inpaintkit eval` / `bench` with every metric, one
photo at a time against batches, the time of each stage, and the time 10,000 photos would take.

    python benchmarks/eval_scale.py [--model default] [--data ../shared/data/imagenette] [--n 256]
        [--masks lama-thick] [--size 256] [--batches 1,16] [--device auto] [--precision 32-true]

Every metric is on (PSNR, SSIM, hole L1, edges, LPIPS VGG and AlexNet, Inception features for FID),
the photos are decoded from their files, as the CLI does; one run per batch size, in one process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save, table  # noqa: E402

from inpaintkit.evaluation import FeatureMetrics, run_bench  # noqa: E402
from inpaintkit.inference import resolve_device  # noqa: E402
from inpaintkit.processes import worker_processes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/imagenette"))
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--masks", default="lama-thick")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps: the learned fill and the metrics")
    parser.add_argument("--precision", default="32-true", help="32-true, or bf16-mixed (the networks)")
    args = parser.parse_args()
    features = FeatureMetrics()
    runs = {}
    for batch in (int(b) for b in args.batches.split(",")):
        start = time.perf_counter()
        with worker_processes():  # as the command line runs the bench
            result, _ = run_bench([args.model], args.data, args.masks, n=args.n, size=args.size, progress=False,
                                  features=features, batch=batch, device=args.device,
                                  precision=args.precision)  # fmt: skip
        runs[batch] = (time.perf_counter() - start, result)
    stages = list(dict.fromkeys(k for _, r in runs.values() for k in r.stages))
    header = ["batch", "s / image", "images / s", "10,000 images (min)", *[f"{s} (s / image)" for s in stages]]
    rows = [
        [str(b), f"{t / args.n:.3f}", f"{args.n / t:.1f}", f"{t / args.n * 10_000 / 60:.1f}",
         *[f"{r.stages.get(s, 0) / args.n:.3f}" for s in stages]]
        for b, (t, r) in runs.items()
    ]  # fmt: skip
    where = f"{args.model} on {resolve_device(args.device)} in {args.precision}, {args.n} photos of {args.data}"
    print(f"{machine()}\n{where}, {args.size} px, masks {args.masks}\n")
    print(table(header, rows))
    psnr = {b: r.rows[0]["psnr"] for b, (_, r) in runs.items()}
    print(f"\nPSNR per batch size (the same numbers): {psnr}")
    timings = {b: {"seconds": t, "stages": r.stages} for b, (t, r) in runs.items()}
    save("eval_scale", {"args": vars(args), "runs": timings})


if __name__ == "__main__":
    main()
