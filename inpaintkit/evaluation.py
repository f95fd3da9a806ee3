"""Running methods side by side on the same images and masks: tables and sample grids."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from inpaintkit import metrics
from inpaintkit.data import fit_square
from inpaintkit.inference import inpaint_array
from inpaintkit.io import mask_to_tensor, to_tensor, write_image
from inpaintkit.masks import MaskGenerator
from inpaintkit.models import count_parameters, load_model

DEMO_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
DEMO_MASKS = ("center", "blocks", "strokes", "lama-thick")


def show_hole(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The masked input as a person sees it: the hole painted white."""
    out = image.copy()
    out[hole] = 255
    return out


def sample_grid(rows: list[list[np.ndarray]], cell: int = 160, gap: int = 4) -> np.ndarray:
    """Tile rows of ``uint8 (H, W, 3)`` images (resized to ``cell`` px squares) on a white sheet."""
    n_cols = max(len(r) for r in rows)
    sheet = np.full((len(rows) * (cell + gap) + gap, n_cols * (cell + gap) + gap, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            thumb = np.asarray(Image.fromarray(img).resize((cell, cell), Image.Resampling.LANCZOS))
            y, x = gap + r * (cell + gap), gap + c * (cell + gap)
            sheet[y : y + cell, x : x + cell] = thumb
    return sheet


@dataclass
class MethodScores:
    """Per-image metric values of one method."""

    name: str
    parameters: int
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def mean(self, key: str) -> float:
        return float(np.mean(self.values[key]))


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


def demo_photos(size: int) -> list[tuple[str, np.ndarray]]:
    """scikit-image's bundled sample photos, prepared as for evaluation (short side, centre crop)."""
    import skimage.data

    return [(name, fit_square(getattr(skimage.data, name)(), size)) for name in DEMO_PHOTOS]


def run_demo(methods: list[str], out: Path, size: int = 256, seed: int = 0) -> str:
    """Inpaint the sample photos under each demo mask kind with each method; write a grid and
    ``results.md``; return the table."""
    models = {name: load_model(name) for name in methods}
    torch.set_grad_enabled(False)
    scores = {name: MethodScores(name, count_parameters(m)) for name, m in models.items()}
    rows = []
    for i, (photo, image) in enumerate(demo_photos(size)):
        for kind in DEMO_MASKS:
            hole = MaskGenerator(kind).sample(i, size, size, seed) > 0.5
            row = [show_hole(image, hole)]
            for name, model in models.items():
                start = time.perf_counter()
                result = inpaint_array(model, image, hole)
                scores[name].add("seconds", time.perf_counter() - start)
                for key, value in score(result, image, hole).items():
                    scores[name].add(key, value)
                row.append(result)
                write_image(out / "results" / name / f"{photo}-{kind}.png", result)
            rows.append(row + [image])
    write_image(out / "grid.png", sample_grid(rows))
    table = markdown_table(
        ["method", "params", "PSNR (dB)", "SSIM", "hole L1 (%)", "s / image"],
        [
            [
                s.name,
                f"{s.parameters:,}",
                f"{s.mean('psnr'):.2f}",
                f"{s.mean('ssim'):.4f}",
                f"{s.mean('l1'):.2f}",
                f"{s.mean('seconds'):.3f}",
            ]
            for s in scores.values()
        ],
    )
    n = len(DEMO_PHOTOS) * len(DEMO_MASKS)
    caption = (
        f"{n} cases: photos {', '.join(DEMO_PHOTOS)} at {size}x{size}, masks {', '.join(DEMO_MASKS)} "
        f"(seed {seed}). Grid columns: masked input, {', '.join(methods)}, original."
    )
    (out / "results.md").write_text(f"{caption}\n\n{table}\n")
    return f"{caption}\n\n{table}"
