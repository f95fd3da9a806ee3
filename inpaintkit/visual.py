"""Pictures for people: the masked input as it looks, and sheets of images side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from inpaintkit.io import write_bytes


def save_figure(fig, path: Path) -> Path:
    """A matplotlib figure as a PNG, written atomically, and the figure closed."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return write_bytes(path, buffer.getvalue())


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
