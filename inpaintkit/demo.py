"""``inpaintkit demo``: scikit-image's sample photos under several mask kinds, every method side by
side in one grid, and a table."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from inpaintkit import metrics
from inpaintkit.data import fit_square
from inpaintkit.evaluation import markdown_table, score
from inpaintkit.inference import inpaint_array, to_tensor
from inpaintkit.io import write_bytes, write_image
from inpaintkit.loading import DEFAULT_MODEL, bundled_weights, load_model
from inpaintkit.masks import MaskGenerator
from inpaintkit.models import classical_names, count_parameters
from inpaintkit.visual import sample_grid, show_hole

DEMO_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
DEMO_MASKS = ("center", "blocks", "strokes", "lama-thick")


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


def demo_photos(size: int) -> list[tuple[str, np.ndarray]]:
    """scikit-image's bundled sample photos, prepared as for evaluation (short side, centre crop)."""
    import skimage.data

    return [(name, fit_square(getattr(skimage.data, name)(), size)) for name in DEMO_PHOTOS]


def default_demo_methods() -> list[str]:
    """The bundled default model (when this build has it) against the classical methods."""
    return ([DEFAULT_MODEL] if bundled_weights().is_file() else []) + classical_names()


def demo_outputs(methods: list[str], out: Path) -> list[Path]:
    """Every file the demo writes into ``out``."""
    results = [out / "results" / m / f"{p}-{k}.png" for m in methods for p in DEMO_PHOTOS for k in DEMO_MASKS]
    return [out / "grid.png", out / "results.md", *results]


@torch.no_grad()
def run_demo(methods: list[str], out: Path, size: int = 256, seed: int = 0) -> str:
    """Inpaint the sample photos under each demo mask kind with each method; write a grid and
    ``results.md``; return the table. LPIPS (VGG) is added when its weights are provisioned."""
    from inpaintkit.backbones import home

    models = {name: load_model(name) for name in methods}
    lpips = metrics.LPIPS("vgg") if (home() / "vgg16.safetensors").is_file() else None
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
                if lpips is not None:
                    scores[name].add("lpips", float(lpips(to_tensor(result), to_tensor(image))[0]))
                row.append(result)
                write_image(out / "results" / name / f"{photo}-{kind}.png", result)
            rows.append(row + [image])
    write_image(out / "grid.png", sample_grid(rows))
    header = ["method", "params", "PSNR (dB)", "SSIM", "hole L1 (%)"] + (["LPIPS (VGG)"] if lpips else [])
    table_rows = []
    for s in scores.values():
        row = [s.name, f"{s.parameters:,}", f"{s.mean('psnr'):.2f}", f"{s.mean('ssim'):.4f}", f"{s.mean('l1'):.2f}"]
        table_rows.append(row + ([f"{s.mean('lpips'):.4f}"] if lpips else []) + [f"{s.mean('seconds'):.3f}"])
    table = markdown_table(header + ["s / image"], table_rows)
    n = len(DEMO_PHOTOS) * len(DEMO_MASKS)
    caption = (
        f"{n} cases: photos {', '.join(DEMO_PHOTOS)} at {size}x{size}, masks {', '.join(DEMO_MASKS)} "
        f"(seed {seed}). Grid columns: masked input, {', '.join(methods)}, original."
        + ("" if lpips else " (LPIPS appears once `inpaintkit weights prepare` has run.)")
    )
    write_bytes(out / "results.md", f"{caption}\n\n{table}\n")
    return f"{caption}\n\n{table}"
