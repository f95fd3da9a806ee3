"""Running a model on photos of any size: pad to its ``size_multiple``, run, crop, composite."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from inpaintkit.io import mask_to_tensor, to_tensor, to_uint8


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` on the bottom and right to multiples of ``multiple`` (reflect where the
    image is large enough, else replicate)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


@torch.no_grad()
def predict(model: nn.Module, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Composited result of ``model``: ``image (B, 3, H, W)``, ``mask (B, 1, H, W)`` -> ``(B, 3, H, W)``.

    Hole pixels are zeroed before the model sees them, so nothing of the original leaks through.
    """
    multiple = getattr(model, "size_multiple", 1)
    h, w = image.shape[-2:]
    masked = image * (1 - mask)
    pred = model(pad_to_multiple(masked, multiple), pad_to_multiple(mask, multiple))[..., :h, :w]
    return mask * pred.clamp(0, 1) + (1 - mask) * image


def inpaint_array(model: nn.Module, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``uint8 (H, W, 3)`` and ``bool (H, W)`` -> ``uint8 (H, W, 3)``; known pixels bit-identical."""
    if not hole.any():
        return image.copy()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    pred = predict(model, to_tensor(image).to(device), mask_to_tensor(hole).to(device))
    return np.where(hole[:, :, None], to_uint8(pred), image)
