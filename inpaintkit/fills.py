"""The classical fills in NumPy, ``(uint8 (H, W, 3), bool (H, W), **options) -> uint8 (H, W, 3)``.

They import neither torch nor the models, so the worker processes that fill a batch's photos side
by side (:mod:`inpaintkit.processes`) start in a fraction of a second; the models in
:mod:`inpaintkit.models.classical` wrap them.
"""

from __future__ import annotations

import functools
import threading

import cv2
import numpy as np


def fill_holed(fill, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``fill``'s result, or ``rgb`` itself when there is no hole."""
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


FILLS = {
    "telea": _opencv(cv2.INPAINT_TELEA),
    "navier-stokes": _opencv(cv2.INPAINT_NS),
    "biharmonic": _biharmonic,
    "mean-fill": _mean,
    "patchmatch": patchmatch_fill,
}
