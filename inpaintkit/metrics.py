"""Image quality metrics. Inputs are ``float (B, 3, H, W)`` in [0, 1]; outputs are per image ``(B,)``.

PSNR and SSIM are computed on the whole composited image, as MMagic reports them. SSIM is Wang et
al.'s (Gaussian window of 11 taps, sigma 1.5, data range 1) averaged over every pixel, the window
reflected at the borders: torchmetrics' values (from 1.5, which stopped cropping to the valid
region), computed here with separable sums. MMagic's SSIM crops that region instead.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from inpaintkit.filters import gaussian_blur, sobel
from inpaintkit.runner import autocast


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image, in [0, 1] units."""
    return (pred.float() - target.float()).pow(2).flatten(1).mean(1)


def psnr(pred: torch.Tensor, target: torch.Tensor, max_db: float = 100.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (data range 1); identical images give ``max_db``."""
    err = mse(pred, target)
    return torch.where(err > 0, 10 * torch.log10(1.0 / err.clamp_min(1e-20)), torch.full_like(err, max_db))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image in [-1, 1] (1 = identical); images must be at least 6 px.
    Differentiable (the SSIM loss is one minus its mean)."""
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    x, y = pred.to(dtype), target.to(dtype)
    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y, xx, yy, xy = gaussian_blur(torch.cat([x, y, x * x, y * y, x * y]), 1.5, border="reflect").chunk(5)
    var_x, var_y = (xx - mu_x.square()).clamp_min(0), (yy - mu_y.square()).clamp_min(0)
    covariance = xy - mu_x * mu_y
    index = (2 * mu_x * mu_y + c1) * (2 * covariance + c2)
    index = index / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return index.flatten(1).mean(1)


def hole_ssim(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, ring: int = 4) -> torch.Tensor:
    """SSIM per image over the hole's bounding box grown by ``ring`` px of context (the
    self-attention GAN project's hole SSIM), the box widened to the 11 px SSIM window where smaller;
    1 for an image without a hole."""
    from inpaintkit.masks import bounding_box

    values = []
    for p, t, m in zip(pred, target, mask, strict=True):
        hole = (m[0] > 0.5).cpu().numpy()
        if not hole.any():
            values.append(torch.ones((), device=pred.device))
            continue
        top, bottom, left, right = bounding_box(hole, margin=ring)
        (top, bottom), (left, right) = _at_least(top, bottom, hole.shape[0]), _at_least(left, right, hole.shape[1])
        box = (slice(None), slice(top, bottom), slice(left, right))
        values.append(ssim(p[box][None], t[box][None])[0])
    return torch.stack(values)


def _at_least(start: int, stop: int, length: int, size: int = 11) -> tuple[int, int]:
    """``[start, stop)`` widened about its centre to ``size`` (at most ``length``), inside ``[0, length)``."""
    size = min(size, length)
    if stop - start >= size:
        return start, stop
    start = max(0, min(start - (size - (stop - start)) // 2, length - size))
    return start, start + size


def hole_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error inside the hole, in percent of the range (MMagic's "L1 error")."""
    diff = (pred.float() - target.float()).abs() * mask
    area = (mask.flatten(1).sum(1) * pred.shape[1]).clamp_min(1)
    return diff.flatten(1).sum(1) / area * 100


def grid_ripple(image: torch.Tensor, sigma: float = 3.0, periods: tuple[int, ...] = (2, 4, 8, 16)) -> float:
    """How strongly ``(1, 3, H, W)`` holds a regular grid of ``periods`` px, the ripple stride-2
    transposed convolutions leave: the largest spectral magnitude of the detail (luma minus its
    Gaussian blur) at those periods along rows, columns or the diagonal, over the median magnitude of
    the spectrum, that median counted as at least 8-bit rounding noise (so a smooth fill's last-bit
    pattern is no grid). White noise gives about 3; a grid you can see, tens."""
    from inpaintkit.filters import grayscale

    step = math.lcm(*periods)
    h, w = image.shape[-2:]
    if h < step or w < step:
        raise ValueError(f"grid_ripple needs at least {step}x{step} px, got {w}x{h}")
    luma = grayscale(image[..., : h - h % step, : w - w % step].float())[0, 0] * 255
    detail = luma - gaussian_blur(luma[None, None], sigma)[0, 0]
    spectrum = torch.fft.fft2(detail - detail.mean()).abs()
    h, w = spectrum.shape  # multiples of every period (cropped above)
    peaks = [spectrum[i, j] for p in periods for i, j in ((h // p, 0), (0, w // p), (h // p, w // p))]
    rounding = math.sqrt(h * w / 12 * math.log(2))  # median |FFT| of uniform rounding to 1 level
    return float(max(peaks) / max(float(spectrum.median()), rounding))


def edge_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the luma's Sobel gradient magnitudes per image (edge-aware error,
    [0, ~5.7])."""
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
        # channels-last: measured 12 % (VGG16) and 30 % (AlexNet) faster on this CPU at 256 px
        self.trunk = pretrained_trunk(name).eval().requires_grad_(False).to(memory_format=torch.channels_last)
        self.autocast_dtype = None  # float32; the bench's --precision bf16-mixed sets torch.bfloat16
        state = load_state(name)
        self.heads = [state[f"lin.{i}.weight"] for i in range(5)]
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised backbone features of ``(B, 3, H, W)`` in [0, 1] (reusable as a reference);
        the backbone runs in ``autocast_dtype`` when set, the rest in float32."""
        with autocast(self, x.device.type):
            feats = self.trunk(
                (((x.float() * 2 - 1) - self.shift) / self.scale).contiguous(memory_format=torch.channels_last)
            )
        feats = [f.float() for f in feats]
        return [f / (torch.linalg.vector_norm(f, dim=1, keepdim=True) + 1e-10) for f in feats]

    @torch.no_grad()
    def distance(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS between two feature lists (``fb`` may have batch 1 and broadcast)."""
        total = 0
        for a, b, head in zip(fa, fb, self.heads, strict=True):
            total = total + torch.nn.functional.conv2d((a - b) ** 2, head.to(a)).mean(dim=(1, 2, 3))
        return total

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(pred), self.features(target))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N, D)``, pytorch-fid's
    formula ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr(sqrt(S_a S_b))``, computed exactly without a
    D x D matrix square root.

    With centred features ``A``, ``B``: ``S_a S_b = A'A B'B / c`` shares its non-zero eigenvalues with
    ``(A B')(A B')' / c``, so ``tr(sqrt(S_a S_b))`` is the sum of the singular values of ``A B'``
    over ``sqrt(c)``, ``c = (n_a - 1)(n_b - 1)``: O(n_a n_b D) instead of O(D^3). When a set has
    more images than dimensions, the symmetric form ``sqrt(S_a) S_b sqrt(S_a)`` is used instead.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("FID needs at least two images per set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = a - mu_a, b - mu_b
    scale = (len(a) - 1) * (len(b) - 1)
    trace_a, trace_b = (ca**2).sum() / (len(a) - 1), (cb**2).sum() / (len(b) - 1)
    if min(len(a), len(b)) <= a.shape[1]:
        cross = np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / np.sqrt(scale)
    else:
        sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        w, v = np.linalg.eigh(sa)
        root = (v * np.sqrt(w.clip(min=0))) @ v.T
        cross = np.sqrt(np.linalg.eigvalsh(root @ sb @ root).clip(min=0)).sum()
    diff = mu_a - mu_b
    return float(max(0.0, diff @ diff + trace_a + trace_b - 2 * cross))


class InceptionPool(torch.nn.Module):
    """2048-d pool features of the standard FID Inception (weights from ``inpaintkit weights prepare``)."""

    def __init__(self):
        super().__init__()
        from inpaintkit.backbones import inception

        self.net = inception().to(memory_format=torch.channels_last)  # 28 % faster on this CPU at 256 px
        self.autocast_dtype = None  # as LPIPS's

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> np.ndarray:
        """``(B, 3, H, W)`` in [0, 1] -> ``float64 (B, 2048)``."""
        with autocast(self, images.device.type):
            pooled = self.net(images.float().clamp(0, 1).contiguous(memory_format=torch.channels_last))
        return pooled.cpu().double().numpy()
