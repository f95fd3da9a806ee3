"""inpaintkit: fill missing or unwanted regions of photos, and train, evaluate and serve the models.

Conventions: images are RGB float in [0, 1] inside the code (``uint8`` at the file boundary), masks
are 1 = hole, and every result is composited, so known pixels come back bit-identical.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from inpaintkit.errors import InpaintError

__version__ = "0.1.0"
__all__ = [
    "InpaintError", "InpaintOptions", "create_model", "inpaint", "list_models", "load_model", "save_model",
]  # fmt: skip

# Imported on first use, so that ``import inpaintkit`` (and the command's start and --help) does not
# pay for torch.
_LAZY = {
    "InpaintOptions": "inpaintkit.inference",
    "load_model": "inpaintkit.loading",
    "create_model": "inpaintkit.models",
    "list_models": "inpaintkit.models",
    "save_model": "inpaintkit.models",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'inpaintkit' has no attribute {name!r}")


def inpaint(image, mask, model="default", **settings):
    """Fill the hole of ``image`` (path or ``uint8 (H, W, 3)``) given ``mask`` (path or ``(H, W)``,
    non-zero = hole) with ``model`` (name, weights path or a loaded model). Returns ``uint8 (H, W, 3)``.

    ``settings`` are the fields of :class:`InpaintOptions` (``strategy``, ``max_side``, ``feather``,
    ``device``, ``backend``). A model named here is prepared for ``device`` and ``backend`` as the CLI
    prepares it; a loaded model is used as it is."""
    import numpy as np

    from inpaintkit.inference import InpaintOptions, inpaint_array, prepare
    from inpaintkit.io import read_image, read_mask
    from inpaintkit.loading import load_model

    try:
        options = InpaintOptions(**settings)
    except TypeError:
        raise InpaintError(f"unknown setting; choose from {', '.join(InpaintOptions.__dataclass_fields__)}") from None
    rgb = read_image(image) if isinstance(image, str | Path) else np.asarray(image)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or not rgb.size:
        raise InpaintError(f"image must be uint8 (H, W, 3) with H, W > 0, got {rgb.dtype} {rgb.shape}")
    hole = read_mask(mask, size=rgb.shape[:2]) if isinstance(mask, str | Path) else np.asarray(mask) != 0
    if hole.shape != rgb.shape[:2]:
        raise InpaintError(f"mask shape {hole.shape} does not match image {rgb.shape[:2]}")
    if isinstance(model, str | Path):
        net = prepare(load_model(model), options)
    elif hasattr(model, "task"):  # a loaded model
        net = model
    else:
        raise InpaintError(f"model must be a name, a weights path or a loaded model, got {model!r}")
    return inpaint_array(net, rgb, hole, options)
