"""Comparing training runs: validation curves, best-metric bars and a table, optionally with a bench
of each run's exported model on the same test photos; and ``--grid`` variants of one recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inpaintkit.errors import InpaintError
from inpaintkit.evaluation import markdown_table, run_bench
from inpaintkit.io import write_bytes
from inpaintkit.visual import figure, save_figure

COMPARE_FILES = ("curves.png", "bars.png", "compare.md")


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar a run logged to TensorBoard: ``{tag: [(step, value), ...]}``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(Path(run_dir).rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            series.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return {tag: sorted(values) for tag, values in series.items()}


def compare_runs(
    runs: list[Path],
    out: Path,
    data: Path | None = None,
    masks: str = "lama-256",
    n: int = 20,
    labels: list[str] | None = None,
) -> str:
    """Validation curves and best-metric bars across training runs (named by their folders, or by
    ``labels``); with ``data``, also a bench of each run's exported model on the same test images
    (bars of its test metrics)."""
    import yaml

    runs = [Path(r) for r in runs]
    for run in runs:
        if not (run / "config.yaml").is_file():
            raise InpaintError(f"{run}: not a training run (no config.yaml)")
    labels = labels or [r.name for r in runs]
    scalars = [read_scalars(r) for r in runs]
    configs = [yaml.safe_load((r / "config.yaml").read_text()) for r in runs]
    out.mkdir(parents=True, exist_ok=True)
    tags = ["val/psnr", "val/ssim", "val/loss", "train/loss"]
    fig, axes = figure(len(tags), (4 * len(tags), 3.2))
    for ax, tag in zip(axes, tags, strict=True):
        for label, series in zip(labels, scalars, strict=True):
            if series.get(tag):
                steps, values = zip(*series[tag], strict=True)
                ax.plot(steps, values, label=label)
        ax.set_title(tag)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out / "curves.png")
    best = {
        "val/psnr": [max((v for _, v in s.get("val/psnr", [])), default=float("nan")) for s in scalars],
        "val/ssim": [max((v for _, v in s.get("val/ssim", [])), default=float("nan")) for s in scalars],
    }
    bars = dict(best)
    if data is not None:
        models = [str(r / "model.safetensors") for r in runs]
        result, _ = run_bench(models, data, masks, n=n, progress=False)
        for key in ("psnr", "ssim", "lpips_vgg"):
            if key in result.rows[0]:
                bars[f"test {key}"] = [
                    float(np.mean([r[key] for r in result.rows if r["method"] == m])) for m in models
                ]
    fig, axes = figure(len(bars), (4 * len(bars), 3.2))
    for ax, (title, values) in zip(axes, bars.items(), strict=True):
        ax.bar(range(len(labels)), values)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(title)
        finite = [v for v in values if np.isfinite(v)]
        if finite:
            ax.set_ylim(min(finite) - 0.05 * abs(min(finite)), max(finite) + 0.05 * abs(max(finite)))
    fig.tight_layout()
    save_figure(fig, out / "bars.png")
    header = ["run", "model", "loss", "optimizer", "lr", "steps"] + list(bars)
    rows = []
    for i, (label, cfg, series) in enumerate(zip(labels, configs, scalars, strict=True)):
        steps = max((s for tag in series for s, _ in series[tag]), default=0)
        loss = ", ".join(f"{k}: {v}" for k, v in cfg["loss"].items())
        rows.append(
            [label, cfg["model"], loss, cfg["optimizer"], f"{cfg['lr']:g}", str(steps)]
            + [f"{bars[k][i]:.4f}" for k in bars]
        )
    table = markdown_table(header, rows)
    write_bytes(
        out / "compare.md", f"# Runs compared\n\n{table}\n\ncurves.png: validation curves; bars.png: best values.\n"
    )
    return table


def grid_overrides(spec: str) -> list[tuple[str, list[str]]]:
    """``key=a,b,c`` -> one ``(suffix, [overrides])`` per value. ``loss=mse,l1`` trains each loss
    alone (weight 1); other keys take the values as they are."""
    if "=" not in spec:
        raise InpaintError(f"--grid {spec!r}: expected key=value1,value2,...")
    key, values = spec.split("=", 1)
    key = key.strip()
    choices = [v.strip() for v in values.split(",") if v.strip()]
    if len(choices) < 2:
        raise InpaintError(f"--grid {spec!r}: give at least two values")
    grid = []
    for value in choices:
        override = f"loss={{{value}: 1.0}}" if key == "loss" else f"{key}={value}"
        grid.append((f"{key}-{value}", [override]))
    return grid


def train_grid(cfg, spec: str, command: list[str]) -> tuple[list[Path], Path, str]:
    """``train --grid``: one run per value of ``spec`` (every variant checked before the first
    trains), then their comparison. Returns the runs, the comparison folder and its table."""
    from inpaintkit.training import train

    variants = [cfg.with_overrides([*extra, f"name={cfg.name}-{suffix}"]) for suffix, extra in grid_overrides(spec)]
    for variant in variants:
        variant.validate()
    runs = [train(variant, command=command) for variant in variants]
    compare_dir = Path(cfg.out) / f"{cfg.name}-grid"
    return runs, compare_dir, compare_runs(runs, compare_dir)
