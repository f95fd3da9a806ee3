"""Helpers shared by the benchmarks: timing, machine description, result files."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import torch

from inpaintkit.reports import machine  # noqa: F401  (the benchmarks' tables name the machine)


def median_seconds(fn, repeats: int = 5, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def save(name: str, payload: dict) -> Path:
    out = Path(os.environ.get("BENCH_OUT", "benchmarks/results"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=1) + "\n")
    return path


def peak_throughput(device: str = "cpu", dtype=torch.float32) -> dict[str, float]:
    """This machine's dense rates in GFLOP/s: a large matmul and a large 3x3 convolution."""
    n = 2048 if device == "cpu" else 8192
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    matmul = 2 * n**3 / median_seconds(lambda: a @ b, repeats=5) / 1e9
    x = torch.randn(8 if device == "cpu" else 64, 128, 128, 128, device=device, dtype=dtype)
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(device, dtype)
    with torch.no_grad():
        seconds = median_seconds(lambda: conv(x), repeats=5)
    flops = 2 * x.shape[0] * 128 * 128 * 9 * 128 * 128
    return {"matmul_gflops": matmul, "conv_gflops": flops / seconds / 1e9}
