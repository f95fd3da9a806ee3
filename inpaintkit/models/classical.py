"""Classical inpainting behind the learned models' contract: ``forward(masked_image, mask) -> image``.

They run per image on the CPU in NumPy; gradients do not flow through them, and they have no
weights to train, save or export.
"""

from __future__ import annotations

import functools
import threading

import cv2
import numpy as np
import torch

from inpaintkit.models.base import Generator
from inpaintkit.models.registry import register
from inpaintkit.processes import fill_processes


class Classical(Generator):
    """Wraps a NumPy fill function ``(uint8 (H, W, 3), bool (H, W), **options) -> uint8 (H, W, 3)``."""

    learned = False
    not_exportable_because = "classical methods are not neural networks; they run in NumPy"

    def __init__(self, method: str, **options):
        super().__init__()
        if method not in _FILLS:
            raise ValueError(f"unknown classical method {method!r}")
        self.method = method
        self.options = options

    @torch.no_grad()
    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``image (B, 3, H, W)`` in [0, 1], ``mask (B, 1, H, W)`` 1 = hole -> ``(B, 3, H, W)``; under
        :func:`~inpaintkit.processes.worker_processes` a batch's images are filled side by side."""
        rgbs = [img.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy() for img in image]
        holes = [(m[0] > 0.5).cpu().numpy() for m in mask]
        fill = functools.partial(_FILLS[self.method], **self.options)
        workers = fill_processes() if len(rgbs) > 1 else None
        filled = (workers.map if workers else map)(_fill_holed, [fill] * len(rgbs), rgbs, holes)
        out = [torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float() / 255.0 for f in filled]
        return torch.stack(out).to(image.device)


def _fill_holed(fill, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    return fill(rgb, hole) if hole.any() else rgb


def _opencv_fill(rgb: np.ndarray, hole: np.ndarray, radius: int, flag: int) -> np.ndarray:
    return cv2.inpaint(rgb, hole.astype(np.uint8), radius, flag)


def _opencv(flag: int):
    return functools.partial(_opencv_fill, flag=flag)  # a module-level function: it pickles


def _biharmonic(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    from skimage.restoration import inpaint_biharmonic

    if hole.all():
        return _mean(rgb, hole)
    out = inpaint_biharmonic(rgb.astype(np.float64) / 255.0, hole, channel_axis=-1)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def _mean(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    known = rgb[~hole]
    colour = known.mean(axis=0) if len(known) else np.full(3, 127.5)
    out = rgb.copy()
    out[hole] = np.round(colour).astype(np.uint8)
    return out


# PyPatchMatch keeps its random seed in the native library: one fill at a time, so a seed set for a
# fill is the seed that fill uses, whatever other threads (the app's requests) do.
_PATCHMATCH_LOCK = threading.Lock()


def patchmatch_fill(
    rgb: np.ndarray, hole: np.ndarray, patch_size: int, seed: int, skip: np.ndarray | None = None
) -> np.ndarray:
    """PyPatchMatch's fill of ``hole`` in ``uint8 (H, W, 3)`` with patches of radius ``patch_size``.
    Pixels in ``skip`` are neither filled nor copied from; they keep their values."""
    import patchmatch

    if hole.all():  # nothing to copy from
        return _mean(rgb, hole)
    skipped = None if skip is None or not skip.any() else skip.astype(np.uint8) * 255
    with _PATCHMATCH_LOCK:
        patchmatch.set_random_seed(seed)
        return patchmatch.inpaint(rgb, hole.astype(np.uint8) * 255, global_mask=skipped, patch_size=patch_size)


_FILLS = {
    "telea": _opencv(cv2.INPAINT_TELEA),
    "navier-stokes": _opencv(cv2.INPAINT_NS),
    "biharmonic": _biharmonic,
    "mean-fill": _mean,
    "patchmatch": patchmatch_fill,
}


@register("telea", parameters=0)
def telea(radius: int = 3) -> Classical:
    """OpenCV fast marching (Telea, 2004): fills inward from the hole border."""
    return Classical("telea", radius=radius)


@register("navier-stokes", parameters=0)
def navier_stokes(radius: int = 3) -> Classical:
    """OpenCV Navier-Stokes (Bertalmio et al., 2001): propagates isophotes into the hole."""
    return Classical("navier-stokes", radius=radius)


@register("biharmonic", parameters=0)
def biharmonic() -> Classical:
    """scikit-image biharmonic: the smoothest surface matching the hole's border."""
    return Classical("biharmonic")


@register("mean-fill", parameters=0)
def mean_fill() -> Classical:
    """The mean colour of the known pixels (a floor any method should beat)."""
    return Classical("mean-fill")


@register("patchmatch", parameters=0)
def patchmatch(patch_size: int = 3, seed: int = 0) -> Classical:
    """PatchMatch (Barnes et al., 2009): copies texture from the photo itself, seeded."""
    if not 1 <= patch_size <= 32:
        raise ValueError(f"patch_size is the patch radius in pixels, 1 to 32; got {patch_size}")
    return Classical("patchmatch", patch_size=patch_size, seed=seed)
