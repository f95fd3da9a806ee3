"""Seeded mask sets on disk (``inpaintkit masks``): PNG files, their hole ratios and a contact sheet."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from inpaintkit.errors import InpaintError
from inpaintkit.masks import MAX_MASK_SIDE, MaskGenerator, hole_ratio


def write_mask_set(
    spec: str, count: int, size: int, seed: int, out: str | Path, preview: str | Path | None = None, existing=None
) -> list[float]:
    """Write ``count`` masks as ``00000.png`` ... plus ``masks.csv`` (file, hole_ratio); returns the ratios.
    Existing files are kept unless ``existing`` says otherwise."""
    from inpaintkit.io import Existing, output_format, write_csv, write_image

    if count < 1 or not 1 <= size <= MAX_MASK_SIDE:
        raise InpaintError(f"--count must be positive and --size 1 to {MAX_MASK_SIDE} px")
    generator = MaskGenerator(spec)
    out = Path(out)
    outputs = [out / "masks.csv", *(out / f"{i:05d}.png" for i in range(count))]
    if preview is not None:  # checked with the rest, before anything is written
        output_format(Path(preview))
        outputs.append(Path(preview))
    (existing or Existing()).check(outputs)
    ratios, rows = [], []
    for i in range(count):
        mask = generator.sample(i, size, size, seed)
        name = f"{i:05d}.png"
        write_image(out / name, mask > 0.5)
        ratios.append(hole_ratio(mask))
        rows.append({"file": name, "hole_ratio": f"{ratios[-1]:.6f}"})
    write_csv(out / "masks.csv", rows)
    if preview is not None:
        write_image(preview, contact_sheet([generator.sample(i, size, size, seed) for i in range(min(count, 64))]))
    return ratios


def contact_sheet(masks: list[np.ndarray], columns: int = 8, gap: int = 2) -> np.ndarray:
    """Tile masks into one ``uint8`` RGB image (holes white on black, grey gaps)."""
    h, w = masks[0].shape
    columns = min(columns, len(masks))
    rows = math.ceil(len(masks) / columns)
    sheet = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), 96, np.uint8)
    for i, m in enumerate(masks):
        r, c = divmod(i, columns)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = (m[:, :, None] > 0.5) * 255
    return sheet
