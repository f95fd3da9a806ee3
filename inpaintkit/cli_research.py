"""The commands that train and measure: ``train``, ``bench``, ``eval``, ``compare`` and ``study``.

Plain functions with typer annotations; :mod:`inpaintkit.cli` registers them on its app. Heavy
libraries are imported inside each, so ``--help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from inpaintkit.errors import InpaintError

Overwrite = Annotated[bool, typer.Option(help="Replace outputs that already exist (by default they are kept).")]
Device = Annotated[str, typer.Option(help="auto (CUDA, else an Apple GPU, when present), cpu, cuda or mps.")]
Precision = Annotated[
    str,
    typer.Option(
        help="Of the networks (learned fills, LPIPS, Inception), as in recipes: 32-true (float32), or bf16-mixed "
        "(their convolutions in bfloat16 where the device computes it natively; about 2x faster on a CPU with AMX, "
        "LPIPS and FID move a little)."
    ),
]
Overrides = Annotated[
    list[str] | None, typer.Option("--set", help="Override a recipe key: --set lr=2e-4 (repeatable).")
]


def train(
    config: Annotated[Path, typer.Option(help="Recipe YAML (see configs/).")],
    data: Annotated[Path | None, typer.Option(help="Training photos (overrides the recipe's data).")] = None,
    set_: Overrides = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many batches.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue from a checkpoint (last.ckpt).")] = None,
    out: Annotated[Path | None, typer.Option(help="Parent folder of the run directory.")] = None,
    grid: Annotated[
        str | None, typer.Option(help="Train one run per value, then compare: optimizer=adam,sgd or loss=mse,l1.")
    ] = None,
) -> None:
    """Train a model from a recipe; writes a run directory with checkpoints, logs and model.safetensors."""
    from inpaintkit.training import load_config
    from inpaintkit.training import train as run_training

    cfg = load_config(config)
    given = {"data": data, "max_steps": max_steps, "out": out}
    cfg = cfg.with_overrides([*(set_ or []), *(f"{k}={v}" for k, v in given.items() if v is not None)])
    if grid is None:
        run_dir = run_training(cfg, resume=str(resume) if resume else None, command=sys.argv)
        if os.environ.get("LOCAL_RANK", "0") == "0":
            typer.echo(f"run: {run_dir}\nmodel: {run_dir / 'model.safetensors'}")
        return
    from inpaintkit.compare import train_grid

    if resume is not None:
        raise InpaintError("--grid starts fresh runs; it cannot be combined with --resume")
    runs, compare_dir, table = train_grid(cfg, grid, sys.argv)
    typer.echo(table)
    typer.echo(f"runs: {', '.join(map(str, runs))}\ncomparison: {compare_dir}")


def bench(
    methods: Annotated[str, typer.Option(help="Comma-separated names or .safetensors files.")],
    data: Annotated[Path, typer.Option(help="Folder of test photos.")],
    out: Annotated[Path, typer.Option(help="Folder for results.md/.csv/.json, metrics.png, samples.png.")],
    masks: Annotated[str, typer.Option(help="pconv-bins, lama-256, center, blocks, or any mask spec.")] = "pconv-bins",
    n: Annotated[int, typer.Option(help="Number of images (the first N, sorted by name).")] = 20,
    size: Annotated[
        int | None, typer.Option(min=32, max=4096, help="Square size of the prepared photos (256; 128 for tasks).")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Seed of generated masks.")] = 2024,
    task: Annotated[str, typer.Option(help="inpaint, or sobel / filter / denoise (image-to-image).")] = "inpaint",
    device: Device = "auto",
    precision: Precision = "32-true",
    overwrite: Overwrite = False,
) -> None:
    """Compare methods on exactly the same images and masks, per hole-ratio bin (or on a task's target)."""
    from inpaintkit.evaluation import run_bench, run_task_bench
    from inpaintkit.io import Existing
    from inpaintkit.reports import BENCH_FILES, results_markdown, write_bench
    from inpaintkit.tasks import IMAGE_TASKS

    Existing(overwrite).check([out / name for name in BENCH_FILES])
    names = [m.strip() for m in methods.split(",") if m.strip()]
    if not names:
        raise InpaintError("--methods: name at least one method, e.g. default,telea")
    if task in IMAGE_TASKS:
        if precision != "32-true":
            raise InpaintError(f"--precision {precision} applies to inpainting benches; --task {task} runs in float32")
        result, grid = run_task_bench(names, data, task, n=n, size=size or 128)
    elif task == "inpaint":
        result, grid = run_bench(
            names, data, masks, n=n, size=size or 256, seed=seed, device=device, precision=precision
        )
    else:
        raise InpaintError(f"unknown --task {task!r}; choose inpaint, {', '.join(IMAGE_TASKS)}")
    write_bench(result, grid, out)
    typer.echo(results_markdown(result))
    typer.echo(f"written: {out}/results.md, results.csv, results.json, metrics.png, samples.png")


def evaluate(
    model: Annotated[str, typer.Option(help="Method name or .safetensors file.")],
    data: Annotated[Path, typer.Option(help="Folder of test photos.")],
    masks: Annotated[str, typer.Option(help="pconv-bins, lama-256, center, blocks, or any mask spec.")],
    out: Annotated[Path, typer.Option(help="JSON report to write.")],
    n: Annotated[int, typer.Option(help="Number of images (the first N, sorted by name).")] = 20,
    size: Annotated[int, typer.Option(min=32, max=4096, help="Square size the photos are prepared at.")] = 256,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Seed of generated masks.")] = 2024,
    device: Device = "auto",
    precision: Precision = "32-true",
    overwrite: Overwrite = False,
) -> None:
    """Evaluate one method: every metric, by hole-ratio bin, as a JSON report."""
    import json

    from inpaintkit.evaluation import run_bench
    from inpaintkit.io import Existing, write_bytes
    from inpaintkit.reports import results_markdown

    if out.suffix.lower() != ".json":
        raise InpaintError(f"{out}: the report is JSON; give --out a name ending in .json")
    Existing(overwrite).check([out])
    result, _ = run_bench([model], data, masks, n=n, size=size, seed=seed, device=device, precision=precision)
    write_bytes(out, (json.dumps(result.to_json(), indent=1) + "\n").encode())
    typer.echo(results_markdown(result))
    typer.echo(f"report: {out}")


def compare(
    runs: Annotated[list[Path], typer.Argument(help="Training run directories.")],
    out: Annotated[Path, typer.Option(help="Folder for curves.png, bars.png and compare.md.")],
    data: Annotated[Path | None, typer.Option(help="Also bench each run's model on these test photos.")] = None,
    masks: Annotated[str, typer.Option(help="Mask protocol of that bench.")] = "lama-256",
    n: Annotated[int, typer.Option(help="Images in that bench.")] = 20,
    overwrite: Overwrite = False,
) -> None:
    """Validation curves and bar charts of metrics across training runs."""
    from inpaintkit.compare import COMPARE_FILES, compare_runs
    from inpaintkit.io import Existing

    Existing(overwrite).check([out / name for name in COMPARE_FILES])

    typer.echo(compare_runs(runs, out, data=data, masks=masks, n=n))
    typer.echo(f"written: {out}/curves.png, bars.png, compare.md")


def study(
    file: Annotated[Path, typer.Argument(help="Study file (see configs/studies/).")],
    out: Annotated[Path, typer.Option(help="Folder for the page (README.md), results.json and curves.")],
    runs: Annotated[Path, typer.Option(help="Parent folder of the training runs (finished ones are reused).")] = Path(
        "runs/studies"
    ),
    set_: Overrides = None,
    data: Annotated[Path | None, typer.Option(help="Test photos instead of the study's.")] = None,
    n: Annotated[int | None, typer.Option(help="Test images instead of the study's count.")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Run a study: train each variant of its recipes, test them on the same images and masks, write its page."""
    from inpaintkit.io import Existing
    from inpaintkit.study import STUDY_FILES, Study, run_study

    if n is not None and n < 1:
        raise InpaintError(f"--n must be at least 1, got {n}")
    Existing(overwrite).check([out / name for name in STUDY_FILES])
    loaded = Study.load(file)
    typer.echo(run_study(loaded, out, runs, set_ or [], data=data, n=n, command=sys.argv))
    typer.echo(f"written: {out}/README.md, results.json and a folder of curves per group")
