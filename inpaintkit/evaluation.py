"""Running methods side by side on the same images and masks: tables, plots and sample grids.

Every method sees exactly the same prepared images (short side resized to ``size`` with bicubic
resampling, centre crop) and the same masks: mask ``i`` of a bin depends only on the protocol, the
bin, the image index and the seed. Metrics are computed on the composited result against the
original: PSNR and SSIM over the whole image, L1 inside the hole (percent), LPIPS (VGG and AlexNet)
per image and FID per method and bin between the results and the originals.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inpaintkit import metrics, runner
from inpaintkit.data import fit_square
from inpaintkit.errors import InpaintError
from inpaintkit.inference import inpaint_array
from inpaintkit.io import (
    list_images,
    mask_to_tensor,
    read_image,
    to_tensor,
    to_uint8,
    write_bytes,
    write_csv,
    write_image,
)
from inpaintkit.loading import load_model
from inpaintkit.masks import FolderMasks, MaskGenerator
from inpaintkit.models import count_parameters
from inpaintkit.progress import progress as bar
from inpaintkit.tasks import IMAGE_TASKS, Task
from inpaintkit.visual import sample_grid, save_figure, show_hole


def first_images(data: str | Path, n: int | None) -> list[Path]:
    """The first ``n`` photos of ``data`` sorted by name (all when ``n`` is None)."""
    if n is not None and n < 1:
        raise InpaintError(f"--n must be at least 1, got {n}")
    files = list_images(data)[:n]
    if not files:
        raise InpaintError(f"{data}: no images found")
    return files


def score(pred: np.ndarray, target: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    p, t, m = to_tensor(pred), to_tensor(target), mask_to_tensor(hole)
    return {
        "psnr": float(metrics.psnr(p, t)[0]),
        "ssim": float(metrics.ssim(p, t)[0]),
        "l1": float(metrics.hole_l1(p, t, m)[0]),
    }


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


BENCH_SEED = 2024
PCONV_BINS = ("1-10%", "10-20%", "20-30%", "30-40%", "40-50%", "50-60%")
PREPARATION = "short side resized to {size} px (bicubic), centre crop to {size}x{size}"
PROTOCOLS = {
    "pconv-bins": "NVIDIA irregular masks (Liu et al., 2018) in six hole-ratio bins, mask i % 2000 of each bin",
    "lama-256": "LaMa's thin / medium / thick test masks, generated with seed 2024",
    "center": "a centred square of half the side (25 % of the image)",
    "blocks": "1-9 squares or circles of 32 or 64 px, seed 2024",
}
MaskSource = Callable[[int, int, int], np.ndarray]  # (index, height, width) -> bool (H, W)


def _default_irregular_masks() -> Path:
    here = Path(os.environ.get("INPAINTKIT_SHARED_DATA", Path.cwd().parent / "shared" / "data"))
    return here / "irregular-masks" / "masks"


def protocol_bins(spec: str, seed: int = BENCH_SEED) -> list[tuple[str, MaskSource]]:
    """The named bins of a protocol, or one bin for any mask spec (``strokes``, ``folder=DIR``...)."""
    if spec == "pconv-bins" or spec.startswith("pconv-bins="):
        folder = Path(spec.split("=", 1)[1]) if "=" in spec else _default_irregular_masks()
        masks = FolderMasks(folder)
        if len(masks.files) < 6:
            raise InpaintError(f"{folder}: pconv-bins needs the six bins of the irregular mask set")
        per_bin = len(masks.files) // 6
        return [
            (label, lambda i, h, w, b=b: masks.load(b * per_bin + i % per_bin, h, w) > 0.5)
            for b, label in enumerate(PCONV_BINS)
        ]
    if spec == "lama-256":
        return [(k, _generated(f"lama-{k}", seed)) for k in ("thin", "medium", "thick")]
    return [(spec, _generated(spec, seed))]


def _generated(spec: str, seed: int) -> MaskSource:
    generator = MaskGenerator(spec)
    return lambda i, h, w: generator.sample(i, h, w, seed) > 0.5


@dataclass
class BenchResult:
    protocol: str
    size: int
    images: list[str]
    methods: dict[str, int]  # name -> parameter count
    rows: list[dict]  # one per method x bin, aggregated
    per_image: list[dict]

    def to_json(self) -> dict:
        return {
            "protocol": self.protocol,
            "protocol_description": PROTOCOLS.get(self.protocol, "masks from the spec, seed 2024"),
            "preparation": PREPARATION.format(size=self.size),
            "images": self.images,
            "methods": self.methods,
            "results": self.rows,
            "per_image": self.per_image,
        }


METRIC_COLUMNS = [
    ("psnr", "PSNR (dB)", "{:.2f}", "higher"),
    ("ssim", "SSIM", "{:.4f}", "higher"),
    ("l1", "hole L1 (%)", "{:.2f}", "lower"),
    ("lpips_vgg", "LPIPS VGG", "{:.4f}", "lower"),
    ("lpips_alex", "LPIPS Alex", "{:.4f}", "lower"),
    ("fid", "FID", "{:.2f}", "lower"),
    ("edge", "edge error", "{:.4f}", "lower"),
]
# Per-image values averaged into a bin's row (FID is computed per bin from features instead).
PER_IMAGE_KEYS = ("hole_ratio", *(key for key, *_ in METRIC_COLUMNS if key != "fid"), "seconds")


def _means(rows: list[dict]) -> dict[str, float]:
    """The mean of every per-image value the rows carry."""
    return {key: float(np.mean([r[key] for r in rows])) for key in PER_IMAGE_KEYS if key in rows[0]}


class FeatureMetrics:
    """LPIPS (VGG, AlexNet) and Inception features, if their weights are provisioned."""

    def __init__(self):
        from inpaintkit.backbones import PREPARE_HINT

        try:
            self.lpips = {"vgg": metrics.LPIPS("vgg"), "alex": metrics.LPIPS("alex")}
            self.inception = metrics.InceptionPool()
        except InpaintError:
            warnings.warn(f"LPIPS and FID skipped: their weights are missing; {PREPARE_HINT}", stacklevel=2)
            self.lpips, self.inception = {}, None


@torch.no_grad()
def run_bench(
    methods: list[str],
    data: str | Path,
    masks: str,
    n: int | None = None,
    size: int = 256,
    seed: int = BENCH_SEED,
    progress: bool | None = None,
    features: FeatureMetrics | None = None,
) -> tuple[BenchResult, list[list[np.ndarray]]]:
    """Every method on the same ``n`` images x every bin of ``masks``. Returns the result and sample
    grid rows (masked input, each method, original) for the first images."""
    files = first_images(data, n)
    bins = protocol_bins(masks, seed)
    models = {name: load_model(name) for name in methods}
    features = features or FeatureMetrics()
    per_image, grid = [], []
    real_feats, fake_feats = [], {(m, b): [] for m in models for b, _ in bins}
    for i, path in enumerate(bar(files, "bench", show=progress)):
        image = fit_square(read_image(path), size)
        target = to_tensor(image)
        if features.inception is not None:
            real_feats.append(features.inception(target))
        reference = {key: lpips.features(target) for key, lpips in features.lpips.items()}
        for label, mask_of in bins:
            hole = mask_of(i, size, size)
            results = []
            for name, model in models.items():
                start = time.perf_counter()
                result = inpaint_array(model, image, hole)
                seconds = time.perf_counter() - start
                results.append(result)
                row = {"method": name, "bin": label, "image": path.name, "hole_ratio": float(hole.mean())}
                row.update(score(result, image, hole))
                row["edge"] = float(metrics.edge_error(to_tensor(result), target)[0])
                row["seconds"] = seconds
                per_image.append(row)
            batch = torch.cat([to_tensor(r) for r in results])
            for key, lpips in features.lpips.items():
                values = lpips.distance(lpips.features(batch), reference[key]).tolist()
                for row, value in zip(per_image[-len(models) :], values, strict=True):
                    row[f"lpips_{key}"] = value
            if features.inception is not None:
                for name, feat in zip(models, features.inception(batch), strict=True):
                    fake_feats[(name, label)].append(feat)
            if i < 2:
                grid.append([show_hole(image, hole), *results, image])
    rows = []
    for name in models:
        for label, _ in bins:
            chosen = [r for r in per_image if r["method"] == name and r["bin"] == label]
            agg = {"method": name, "bin": label, "images": len(chosen)}
            agg.update(_means(chosen))
            if features.inception is not None and len(files) >= 2:
                agg["fid"] = metrics.frechet_distance(np.stack(fake_feats[(name, label)]), np.concatenate(real_feats))
            rows.append(agg)
    params = {name: count_parameters(m) for name, m in models.items()}
    return BenchResult(masks, size, [p.name for p in files], params, rows, per_image), grid


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
    return "\n".join(parts) + "\n"


def plot_metrics(result: BenchResult, path: Path) -> None:
    """Each metric against the bins' mean hole ratio, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [c for c in METRIC_COLUMNS if c[0] in result.rows[0]]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.0), squeeze=False)
    for ax, (key, title, _, better) in zip(axes[0], keys, strict=True):
        for method in result.methods:
            rows = sorted((r for r in result.rows if r["method"] == method), key=lambda r: r["hole_ratio"])
            ax.plot([r["hole_ratio"] * 100 for r in rows], [r[key] for r in rows], marker="o", label=method)
        ax.set_xlabel("hole (% of image)")
        ax.set_title(f"{title} ({better} better)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
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


@torch.no_grad()
def run_task_bench(
    methods: list[str],
    data: str | Path,
    task_name: str,
    n: int | None = 20,
    size: int = 128,
    progress: bool | None = None,
) -> tuple[BenchResult, list[list[np.ndarray]]]:
    """Image-to-image models against a task's exact target (the filter itself is the ground truth),
    on the same prepared photos; metrics over the whole image. Models run through the runner, as
    ``apply`` runs them. Returns the result and sample rows (input, target, each method) of the
    first images."""
    files = first_images(data, n)
    models = {name: load_model(name) for name in methods}
    per_image, grid = [], []
    tasks = {name: Task(task_name, **_task_args(model, task_name)) for name, model in models.items()}
    for i, path in enumerate(bar(files, f"bench {task_name}", show=progress)):
        image = to_tensor(fit_square(read_image(path), size))[0]
        row_images = []
        for name, model in models.items():
            task = tasks[name]
            source, target, mask = task.make(image, torch.zeros_like(image[:1]), np.random.default_rng([BENCH_SEED, i]))
            start = time.perf_counter()
            pred = runner.predict(model, source[None], mask[None])
            seconds = time.perf_counter() - start
            row = {"method": name, "bin": task_name, "image": path.name, "hole_ratio": 1.0, "seconds": seconds}
            row["psnr"] = float(metrics.psnr(pred, target[None])[0])
            row["ssim"] = float(metrics.ssim(pred, target[None])[0])
            row["l1"] = float((pred - target[None]).abs().mean() * 100)
            per_image.append(row)
            if not row_images:
                row_images += [to_uint8(source), to_uint8(target.expand(3, -1, -1))]
            row_images.append(to_uint8(pred[0].expand(3, -1, -1)))
        if i < 2:
            grid.append(row_images)
    rows = []
    for name in models:
        chosen = [r for r in per_image if r["method"] == name]
        rows.append({"method": name, "bin": task_name, "images": len(chosen), **_means(chosen)})
    params = {name: count_parameters(m) for name, m in models.items()}
    return BenchResult(task_name, size, [p.name for p in files], params, rows, per_image), grid


def _task_args(model, task_name: str) -> dict:
    """The task settings a model was trained with (from its card), so it is judged on its own task."""
    recipe = getattr(model, "card", {}).get("recipe", {})
    return recipe.get("task_args", {}) if recipe.get("task") == task_name else {}
