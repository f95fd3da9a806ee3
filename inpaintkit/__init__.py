"""inpaintkit: fill missing or unwanted regions of photos, and train, evaluate and serve the models.

Conventions: images are RGB float in [0, 1] inside the code (``uint8`` at the file boundary), masks
are 1 = hole, and every result is composited, so known pixels come back bit-identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inpaintkit.errors import InpaintError
from inpaintkit.models import DEFAULT_MODEL, create_model, list_models, load_model, save_model

__version__ = "0.1.0"
__all__ = ["InpaintError", "create_model", "inpaint", "list_models", "load_model", "save_model"]


def inpaint(image, mask, model=DEFAULT_MODEL, strategy: str = "auto", max_side: int = 1024, feather: int = 0):
    """Fill the hole of ``image`` (path or ``uint8 (H, W, 3)``) given ``mask`` (path or ``(H, W)``,
    non-zero = hole) with ``model`` (name, weights path or module). Returns ``uint8 (H, W, 3)``.
    ``strategy``, ``max_side`` and ``feather`` are described in :mod:`inpaintkit.inference`."""
    from inpaintkit.inference import inpaint_array
    from inpaintkit.io import read_image, read_mask

    rgb = read_image(image) if isinstance(image, str | Path) else np.asarray(image)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InpaintError(f"image must be uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    hole = read_mask(mask, size=rgb.shape[:2]) if isinstance(mask, str | Path) else np.asarray(mask) != 0
    if hole.shape != rgb.shape[:2]:
        raise InpaintError(f"mask shape {hole.shape} does not match image {rgb.shape[:2]}")
    net = load_model(model) if isinstance(model, str | Path) else model
    return inpaint_array(net, rgb, hole, strategy=strategy, max_side=max_side, feather=feather)
