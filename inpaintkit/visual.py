"""Pictures for people: the masked input as it looks, and sheets of images side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from inpaintkit.io import write_bytes


def figure(columns: int, size: tuple[float, float]):
    """A figure of one row of ``columns`` axes ``(fig, axes)``, made without pyplot: the library never
    switches the backend or opens windows, so a notebook's own plots keep working."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    return fig, fig.subplots(1, columns, squeeze=False)[0]


def save_figure(fig, path: Path) -> Path:
    """A matplotlib figure as a PNG, written atomically."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
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
