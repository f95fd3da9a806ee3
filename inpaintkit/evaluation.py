"""Running methods side by side on the same images and masks: tables, plots and sample grids.

Every method sees exactly the same prepared images (short side resized to ``size`` with bicubic
resampling, centre crop) and the same masks: mask ``i`` of a bin depends only on the protocol, the
bin, the image index and the seed. Metrics are computed on the composited result against the
original: PSNR and SSIM over the whole image, L1 inside the hole (percent), LPIPS (VGG and AlexNet)
per image and FID per method and bin between the results and the originals.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from inpaintkit import metrics, runner
from inpaintkit.data import fit_square
from inpaintkit.errors import InpaintError
from inpaintkit.inference import (
    InpaintOptions,
    _device,
    full_float32,
    inpaint_array,
    mask_to_tensor,
    network_dtype,
    require_inpainter,
    resolve_device,
    to_tensor,
    to_uint8,
)
from inpaintkit.io import list_images, read_image
from inpaintkit.loading import load_model
from inpaintkit.masks import FolderMasks, MaskGenerator
from inpaintkit.models import count_parameters
from inpaintkit.progress import progress as progress_bar
from inpaintkit.tasks import Task
from inpaintkit.visual import show_hole


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
    """The named bins of a protocol, or one bin for any mask spec (``strokes``, ``folder=DIR``...);
    specs joined by ``;`` are one bin each (``box:max=18;box:min=19,max=36``)."""
    if ";" in spec:
        return [one for part in spec.split(";") for one in protocol_bins(part.strip(), seed)]
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
    stages: dict[str, float] = field(default_factory=dict)  # seconds spent in each stage
    precision: str = "32-true"  # of the networks (learned fills, LPIPS, Inception): 32-true or bf16-mixed

    def to_json(self) -> dict:
        return {
            "protocol": self.protocol,
            "protocol_description": PROTOCOLS.get(self.protocol, "masks from the spec, seed 2024"),
            "preparation": PREPARATION.format(size=self.size),
            "images": self.images,
            "methods": self.methods,
            "results": self.rows,
            "per_image": self.per_image,
            "seconds_per_stage": self.stages,
            "precision": self.precision,
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
# Kept in every row, left out of the bench's tables (studies choose them): whole-image errors in [0, 1]
# units (PSNR says the same) and SSIM over the hole's box with a 4 px ring.
EXTRA_COLUMNS = [
    ("mae", "MAE", "{:.4f}", "lower"), ("mse", "MSE", "{:.5f}", "lower"),
    ("hole_ssim", "hole SSIM", "{:.4f}", "higher"),
]  # fmt: skip
# Per-image values averaged into a bin's row (FID is computed per bin from features instead).
PER_IMAGE_KEYS = ("hole_ratio", *(key for key, *_ in METRIC_COLUMNS + EXTRA_COLUMNS if key != "fid"), "seconds")


def _means(rows: list[dict]) -> dict[str, float]:
    """The mean of every per-image value the rows carry."""
    return {key: float(np.mean([r[key] for r in rows])) for key in PER_IMAGE_KEYS if key in rows[0]}


class FeatureMetrics:
    """LPIPS (VGG, AlexNet) and Inception features, if their weights are provisioned (and ``learned``)."""

    def __init__(self, learned: bool = True):
        from inpaintkit.backbones import PREPARE_HINT

        self.lpips, self.inception = {}, None
        if not learned:
            return
        try:
            self.lpips = {"vgg": metrics.LPIPS("vgg"), "alex": metrics.LPIPS("alex")}
            self.inception = metrics.InceptionPool()
        except InpaintError:
            warnings.warn(f"LPIPS and FID skipped: their weights are missing; {PREPARE_HINT}", stacklevel=2)
            self.lpips, self.inception = {}, None

    def to(self, device: str, dtype: torch.dtype | None = None) -> FeatureMetrics:
        """The networks moved to ``device`` (in place), their convolutions in ``dtype`` under autocast
        (None, the default, sets float32 again)."""
        for network in [*self.lpips.values(), *([self.inception] if self.inception is not None else [])]:
            network.to(device)
            network.autocast_dtype = dtype
        return self


BENCH_BATCH = 16  # photos filled and scored together (one chunk in memory at a time)


def _fill_batch(model, images: list[np.ndarray], holes: list[np.ndarray], max_side: int) -> list[np.ndarray]:
    """``model``'s fill of each image: one batch through the runner when the images share a size the
    model runs at whole (as the bench prepares them), else photo by photo; the pixels of
    :func:`inpaint_array` either way (known pixels bit-identical)."""
    if not isinstance(model, torch.nn.Module) or len(images) == 1 or images[0].shape[0] > max_side:
        return [inpaint_array(model, image, hole) for image, hole in zip(images, holes, strict=True)]
    require_inpainter(model)
    device = _device(model)
    batch = torch.cat([to_tensor(image) for image in images]).to(device)
    masks = torch.cat([mask_to_tensor(hole) for hole in holes]).to(device)
    preds = runner.predict(model, batch, masks)
    return [
        np.where(hole[:, :, None], to_uint8(pred), image)
        for pred, image, hole in zip(preds, images, holes, strict=True)
    ]


class _Stages:
    """Seconds spent in each stage of a bench (decode, each method's fill, each metric); on CUDA a
    stage ends when its kernels have finished."""

    def __init__(self, device: str = "cpu"):
        self.seconds: dict[str, float] = {}
        self.sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    @contextlib.contextmanager
    def time(self, stage: str):
        start = time.perf_counter()
        yield
        self.sync()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


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
    batch: int = BENCH_BATCH,
    device: str = "auto",
    precision: str = "32-true",
) -> tuple[BenchResult, list[list[np.ndarray]]]:
    """Every method on the same ``n`` images x every bin of ``masks``, ``batch`` photos at a time:
    photos are decoded a chunk ahead on a thread, learned methods fill a chunk in one batch, metrics
    run on batches and each original's features are computed once for every method and bin. Learned
    methods and metrics run on ``device`` (``auto``: CUDA, else an Apple GPU, when present), in
    float32, or with ``precision="bf16-mixed"`` their networks' convolutions in bfloat16 (faster where
    native; the numbers move a little); classical methods on the CPU. Returns the result (with the
    seconds each stage took) and sample grid rows (masked input, each method, original) for the
    first two images."""
    from concurrent.futures import ThreadPoolExecutor

    if batch < 1:
        raise InpaintError(f"batch must be at least 1, got {batch}")
    device = resolve_device(device)
    dtype = network_dtype(precision, device)
    with full_float32(device):
        files = first_images(data, n)
        bins = protocol_bins(masks, seed)
        models = {name: load_model(name) for name in methods}
        for model in models.values():
            if isinstance(model, torch.nn.Module):
                model.to(device)
                model.autocast_dtype = dtype
        features = (features or FeatureMetrics()).to(device, dtype)
        stages = _Stages(device)
        per_image, grid = [], {}
        real_feats, fake_feats = [], {(m, b): [] for m in models for b, _ in bins}
        chunks = [list(range(k, min(k + batch, len(files)))) for k in range(0, len(files), batch)]

        def decode(chunk: list[int]) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
            """A chunk's photos and, per bin, their masks (drawn here too: on a GPU they cost more than
            the metrics)."""
            return [fit_square(read_image(files[i]), size) for i in chunk], [
                [mask_of(i, size, size) for i in chunk] for _, mask_of in bins
            ]

        with ThreadPoolExecutor(1, thread_name_prefix="inpaintkit-decode") as reader:
            pending = reader.submit(decode, chunks[0])
            bar = progress_bar(None, "bench", "img", total=len(files), show=progress)
            for c, chunk in enumerate(chunks):
                with stages.time("decode, masks (waiting)"):
                    images, chunk_holes = pending.result()
                if c + 1 < len(chunks):
                    pending = reader.submit(decode, chunks[c + 1])
                targets = torch.cat([to_tensor(image) for image in images]).to(device)
                with stages.time("Inception (FID)"):
                    if features.inception is not None:
                        real_feats.extend(features.inception(targets))
                with stages.time("LPIPS"):
                    reference = {key: lpips.features(targets) for key, lpips in features.lpips.items()}
                for b, (label, _) in enumerate(bins):
                    holes = chunk_holes[b]
                    masks_t = torch.cat([mask_to_tensor(hole) for hole in holes]).to(device)
                    filled = {}
                    for m, (name, model) in enumerate(models.items()):
                        start = time.perf_counter()
                        with stages.time(f"fill: {name}"):
                            filled[name] = _fill_batch(model, images, holes, InpaintOptions().max_side)
                        seconds = (time.perf_counter() - start) / len(chunk)
                        results = torch.cat([to_tensor(r) for r in filled[name]]).to(device)
                        with stages.time("PSNR, SSIM, L1, edges"):
                            values = {
                                "psnr": metrics.psnr(results, targets), "ssim": metrics.ssim(results, targets),
                                "l1": metrics.hole_l1(results, targets, masks_t),
                                "edge": metrics.edge_error(results, targets),
                                "mae": (results - targets).abs().mean((1, 2, 3)),
                                "mse": (results - targets).square().mean((1, 2, 3)),
                                "hole_ssim": metrics.hole_ssim(results, targets, masks_t),
                            }  # fmt: skip
                        with stages.time("LPIPS"):
                            for key, lpips in features.lpips.items():
                                values[f"lpips_{key}"] = lpips.distance(lpips.features(results), reference[key])
                        values = {key: v.cpu() for key, v in values.items()}
                        with stages.time("Inception (FID)"):
                            if features.inception is not None:
                                fake_feats[(name, label)].extend(features.inception(results))
                        for k, i in enumerate(chunk):
                            row = {
                                "method": name,
                                "bin": label,
                                "image": files[i].name,
                                "hole_ratio": float(holes[k].mean()),
                            }
                            row |= {key: float(v[k]) for key, v in values.items()} | {"seconds": seconds}
                            per_image.append(((i, b, m), row))
                    for k, i in enumerate(chunk):
                        if i < 2:
                            grid[(i, b)] = [show_hole(images[k], holes[k]), *(f[k] for f in filled.values()), images[k]]
                bar.update(len(chunk))
            bar.close()
        per_image = [row for _, row in sorted(per_image, key=lambda item: item[0])]  # image, bin, method
        rows = []
        for name in models:
            for label, _ in bins:
                chosen = [r for r in per_image if r["method"] == name and r["bin"] == label]
                agg = {"method": name, "bin": label, "images": len(chosen)}
                agg.update(_means(chosen))
                if features.inception is not None and len(files) >= 2:
                    agg["fid"] = metrics.frechet_distance(np.stack(fake_feats[(name, label)]), np.stack(real_feats))
                rows.append(agg)
        params = {name: count_parameters(m) for name, m in models.items()}
        result = BenchResult(masks, size, [p.name for p in files], params, rows, per_image, stages.seconds, precision)
        return result, [grid[key] for key in sorted(grid)]


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
    for name, model in models.items():
        if getattr(model, "task", None) != task_name:
            raise InpaintError(f"{name} does not compute the {task_name} task; bench a model trained for it")
    per_image, grid = [], []
    tasks = {name: Task(task_name, **_task_args(model, task_name)) for name, model in models.items()}
    for i, path in enumerate(progress_bar(files, f"bench {task_name}", show=progress)):
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
