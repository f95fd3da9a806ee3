"""Image quality metrics. Inputs are ``float (B, 3, H, W)`` in [0, 1]; outputs are per image ``(B,)``.

PSNR and SSIM are computed on the whole composited image, as MMagic reports them. SSIM follows
torchmetrics (Gaussian window 11, sigma 1.5, data range 1, no padding: the valid region), which
matches Wang et al.'s reference and kornia; scikit-image pads borders and differs slightly.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import structural_similarity_index_measure


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image, in [0, 1] units."""
    return (pred.float() - target.float()).pow(2).flatten(1).mean(1)


def psnr(pred: torch.Tensor, target: torch.Tensor, max_db: float = 100.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (data range 1); identical images give ``max_db``."""
    err = mse(pred, target)
    return torch.where(err > 0, 10 * torch.log10(1.0 / err.clamp_min(1e-20)), torch.full_like(err, max_db))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image in [-1, 1] (1 = identical); images must be at least 11 px."""
    return structural_similarity_index_measure(pred.float(), target.float(), data_range=1.0, reduction="none").reshape(
        -1
    )


def hole_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error inside the hole, in percent of the range (MMagic's "L1 error")."""
    diff = (pred.float() - target.float()).abs() * mask
    area = (mask.flatten(1).sum(1) * pred.shape[1]).clamp_min(1)
    return diff.flatten(1).sum(1) / area * 100
