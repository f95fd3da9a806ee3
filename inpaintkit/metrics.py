"""Image quality metrics. Inputs are ``float (B, 3, H, W)`` in [0, 1]; outputs are per image ``(B,)``.

PSNR and SSIM are computed on the whole composited image, as MMagic reports them. SSIM follows
torchmetrics (Gaussian window 11, sigma 1.5, data range 1, no padding: the valid region), which
matches Wang et al.'s reference and kornia; scikit-image pads borders and differs slightly.
"""

from __future__ import annotations

import numpy as np
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


def edge_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of Sobel gradient magnitudes per image (edge-aware error, [0, ~5.7])."""
    from inpaintkit.losses import sobel

    return (sobel(pred.float()) - sobel(target.float())).abs().flatten(1).mean(1)


class LPIPS(torch.nn.Module):
    """LPIPS v0.1 (Zhang et al., 2018): unit-normalised backbone features at five depths, squared
    differences weighted by learned 1x1 heads, averaged over space and summed over depths.

    ``network`` is ``alex`` or ``vgg``. Inputs are ``(B, 3, H, W)`` in [0, 1] (scaled to [-1, 1]
    inside, then LPIPS's own shift and scale); output ``(B,)``, 0 for identical images.
    """

    def __init__(self, network: str = "vgg"):
        super().__init__()
        from inpaintkit.backbones import load_state, pretrained_trunk

        name = {"alex": "alexnet", "vgg": "vgg16"}[network]
        self.trunk = pretrained_trunk(name).eval().requires_grad_(False)
        state = load_state(name)
        self.heads = [state[f"lin.{i}.weight"] for i in range(5)]
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fa = self.trunk(((pred.float() * 2 - 1) - self.shift) / self.scale)
        fb = self.trunk(((target.float() * 2 - 1) - self.shift) / self.scale)
        total = torch.zeros(pred.shape[0], device=pred.device)
        for a, b, head in zip(fa, fb, self.heads, strict=True):
            a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total += torch.nn.functional.conv2d((a - b) ** 2, head.to(a)).mean(dim=(1, 2, 3))
        return total


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N, D)`` (pytorch-fid's
    formula): ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 sqrt(S_a S_b))``, with a small diagonal offset when
    the product is singular, and the imaginary residue of ``sqrtm`` dropped."""
    from scipy import linalg

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("FID needs at least two images per set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(sigma_a.dot(sigma_b), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma_a)) * 1e-6
        covmean = linalg.sqrtm((sigma_a + offset).dot(sigma_b + offset))
    covmean = covmean.real
    diff = mu_a - mu_b
    return float(max(0.0, diff.dot(diff) + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.trace(covmean)))


class InceptionPool(torch.nn.Module):
    """2048-d pool features of the standard FID Inception (weights from ``inpaintkit weights prepare``)."""

    def __init__(self):
        super().__init__()
        from inpaintkit.backbones import inception

        self.net = inception()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> np.ndarray:
        """``(B, 3, H, W)`` in [0, 1] -> ``float64 (B, 2048)``."""
        return self.net(images.float().clamp(0, 1)).double().cpu().numpy()
