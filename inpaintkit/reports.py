"""The bench's report: tables per metric (methods x bins), speed, time per stage, a plot of each
metric against the hole ratio and a sample grid, written atomically (``inpaintkit bench`` / ``eval``)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from inpaintkit.evaluation import METRIC_COLUMNS, PREPARATION, PROTOCOLS, BenchResult, markdown_table
from inpaintkit.io import write_bytes, write_csv, write_image
from inpaintkit.tasks import IMAGE_TASKS
from inpaintkit.visual import figure, sample_grid, save_figure


def machine() -> str:
    """The processor, core count, torch version and threads (and the GPU, if any) a result came from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads{gpu}"


def results_markdown(result: BenchResult) -> str:
    """One table per metric (methods x bins), then speed and size."""
    bins = list(dict.fromkeys(r["bin"] for r in result.rows))
    lookup = {(r["method"], r["bin"]): r for r in result.rows}
    parts = [
        f"# Bench: {result.protocol}",
        "",
        f"{len(result.images)} images, {PREPARATION.format(size=result.size)}; masks: "
        f"{PROTOCOLS.get(result.protocol, result.protocol)}. "
        + (
            "Metrics on the composited result: PSNR and SSIM over the whole image, L1 inside the hole in "
            "percent, LPIPS v0.1, FID against the originals (few images per bin make FID biased upwards: "
            "compare methods, not papers)."
            if result.protocol not in IMAGE_TASKS
            else "Metrics over the whole image against the task's exact target; L1 in percent of the range."
        )
        + (
            f" Precision {result.precision}: the convolutions of any network (learned fill, LPIPS, Inception) ran "
            "in bfloat16, so their numbers differ a little from float32's."
            if result.precision != "32-true"
            else ""
        ),
    ]
    mean_ratio = {b: np.mean([lookup[(m, b)]["hole_ratio"] for m in result.methods]) for b in bins}
    header = ["method"] + [f"{b} ({mean_ratio[b] * 100:.0f} %)" for b in bins]
    for key, title, fmt, better in METRIC_COLUMNS:
        if key not in result.rows[0]:
            continue
        table = [[m] + [fmt.format(lookup[(m, b)][key]) for b in bins] for m in result.methods]
        parts += ["", f"## {title} ({better} is better)", "", markdown_table(header, table)]
    speed = [
        [m, f"{p:,}", f"{np.mean([lookup[(m, b)]['seconds'] for b in bins]):.4f}"] for m, p in result.methods.items()
    ]
    parts += ["", "## Speed and size", "", markdown_table(["method", "parameters", "seconds / image"], speed)]
    if result.stages:
        total = sum(result.stages.values())
        stages = [[k, f"{v:.1f}", f"{v / total * 100:.0f} %"] for k, v in result.stages.items()]
        parts += ["", "## Time per stage", "", markdown_table(["stage", "seconds", "share"], stages)]
    return "\n".join(parts) + "\n"


def plot_metrics(result: BenchResult, path: Path) -> None:
    """Each metric against the bins' mean hole ratio, one line per method."""
    keys = [c for c in METRIC_COLUMNS if c[0] in result.rows[0]]
    fig, axes = figure(len(keys), (3.2 * len(keys), 3.0))
    for ax, (key, title, _, better) in zip(axes, keys, strict=True):
        for method in result.methods:
            rows = sorted((r for r in result.rows if r["method"] == method), key=lambda r: r["hole_ratio"])
            ax.plot([r["hole_ratio"] * 100 for r in rows], [r[key] for r in rows], marker="o", label=method)
        ax.set_xlabel("hole (% of image)")
        ax.set_title(f"{title} ({better} better)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


BENCH_FILES = ("results.md", "results.csv", "results.json", "metrics.png", "samples.png")


def write_bench(result: BenchResult, grid: list[list[np.ndarray]], out: Path) -> None:
    """The bench's files (``BENCH_FILES``) in ``out``, each written atomically."""
    write_bytes(out / "results.md", results_markdown(result))
    write_bytes(out / "results.json", json.dumps(result.to_json(), indent=1) + "\n")
    write_csv(out / "results.csv", result.rows)
    plot_metrics(result, out / "metrics.png")
    if grid:
        write_image(out / "samples.png", sample_grid(grid, cell=128))
