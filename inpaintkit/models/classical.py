"""Classical inpainting behind the learned models' contract: ``forward(masked_image, mask) -> image``.

They run per image on the CPU in NumPy; gradients do not flow through them, and they have no
weights to train, save or export.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from inpaintkit.fills import FILLS, fill_holed
from inpaintkit.models.base import Generator
from inpaintkit.models.registry import register
from inpaintkit.processes import fill_processes


class Classical(Generator):
    """Wraps a NumPy fill function ``(uint8 (H, W, 3), bool (H, W), **options) -> uint8 (H, W, 3)``."""

    learned = False
    not_exportable_because = "classical methods are not neural networks; they run in NumPy"

    def __init__(self, method: str, **options):
        super().__init__()
        if method not in FILLS:
            raise ValueError(f"unknown classical method {method!r}")
        self.method = method
        self.options = options

    @torch.no_grad()
    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``image (B, 3, H, W)`` in [0, 1], ``mask (B, 1, H, W)`` 1 = hole -> ``(B, 3, H, W)``; under
        :func:`~inpaintkit.processes.worker_processes` a batch's images are filled side by side."""
        rgbs = [img.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy() for img in image]
        holes = [(m[0] > 0.5).cpu().numpy() for m in mask]
        fill = functools.partial(FILLS[self.method], **self.options)
        workers = fill_processes() if len(rgbs) > 1 else None
        filled = (workers.map if workers else map)(fill_holed, [fill] * len(rgbs), rgbs, holes)
        out = [torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float() / 255.0 for f in filled]
        return torch.stack(out).to(image.device)


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
