"""Fixed image filters on tensors ``(..., C, H, W)``: luma, Gaussian blur, Sobel, a convolution, and
the removal of a periodic grid.

They define the targets of the image-to-image tasks and feed the edge loss and the edge metric, so
a Sobel map means the same thing everywhere in the project.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# ITU-R BT.601 luma, what OpenCV's RGB2GRAY and Pillow's "L" compute: the grey image people (and
# the Sobel reference project) mean by "grayscale". Green weighs most, as it does for the eye, so
# the edges a person sees dominate the map.
LUMA = (0.299, 0.587, 0.114)
SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
SOBEL_SCALE = 1.0 / (4.0 * math.sqrt(2.0))  # the largest magnitude of a [0, 1] image is 4 sqrt 2


def grayscale(image: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of ``(..., 3, H, W)`` -> ``(..., 1, H, W)``."""
    weights = torch.tensor(LUMA, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * weights).sum(dim=-3, keepdim=True)


def gaussian_blur(image: torch.Tensor, sigma: float, border: str = "replicate") -> torch.Tensor:
    """Separable Gaussian blur (radius ``ceil(3 sigma)``, borders extended by ``border``: ``replicate``
    or ``reflect``); a no-op for ``sigma <= 0``.

    Summed from shifted slices of the padded image, one per tap: on this project's CPU that is 8 to
    18 times faster than the same taps as a depthwise convolution (1 to 16 px at 1024 px), whose
    one-channel kernels have no fast path, and gives the same values."""
    if sigma <= 0:
        return image
    radius = max(1, math.ceil(3 * sigma))
    # the taps in float32 (float64 for float64) and on the CPU: no device sync to read them
    x = torch.arange(-radius, radius + 1, dtype=torch.float64 if image.dtype == torch.float64 else torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    taps = (k / k.sum()).tolist()
    h, w = image.shape[-2:]
    # half precision would round every one of the sums; a convolution accumulates in float32
    exact = image if image.dtype in (torch.float32, torch.float64) else image.float()
    padded = F.pad(exact.reshape(-1, 1, h, w), (radius, radius, radius, radius), mode=border)

    def along(x: torch.Tensor, dim: int, size: int) -> torch.Tensor:  # the taps over one axis
        total = x.narrow(dim, 0, size) * taps[0]
        for i, tap in enumerate(taps[1:], 1):
            total = total.add_(x.narrow(dim, i, size), alpha=tap)
        return total

    return along(along(padded, -1, w), -2, h).reshape(image.shape).to(image.dtype)


def remove_grid(image: torch.Tensor, weight: torch.Tensor, period: int, blocks: float = 4.0) -> torch.Tensor:
    """``(N, C, H, W)`` without the pattern that repeats every ``period`` px (the ripple stride-2
    transposed convolutions leave, of period 2, 4 and 8 for three of them), other detail kept.

    The detail (the image minus its mean over ``period`` x ``period`` px, which holds all of such a
    pattern and none of a linear ramp) is averaged over the pixels that share a phase (row and column
    modulo ``period``) with a Gaussian ``blocks`` periods wide, weighted by ``weight`` ``(N, 1, H, W)``
    (where the image counts, such as a hole). What these local phase means do not share, the regular
    grid, is subtracted where ``weight`` is; detail that is not periodic averages out."""
    n, c, h, w = image.shape
    pad = (0, -w % period, 0, -h % period)
    x, m = F.pad(image, pad, mode="replicate"), F.pad(weight, pad)
    rows, cols = x.shape[-2] // period, x.shape[-1] // period
    half = period // 2
    local_mean = F.avg_pool2d(F.pad(x, (half, period - 1 - half) * 2, mode="replicate"), period, 1)

    def by_phase(t: torch.Tensor) -> torch.Tensor:  # (N, K, H, W) -> (N, K * period**2, rows, cols)
        t = t.reshape(n, -1, rows, period, cols, period).permute(0, 1, 3, 5, 2, 4)
        return t.reshape(n, -1, rows, cols)

    phases = (n, -1, period * period, rows, cols)  # the weight's one channel broadcasts over the image's
    means = gaussian_blur(by_phase((x - local_mean) * m), blocks).reshape(phases)
    means = means / gaussian_blur(by_phase(m), blocks).clamp_min(1e-6).reshape(phases)
    grid = (means - means.mean(2, keepdim=True)).reshape(n, c, period, period, rows, cols)
    grid = grid.permute(0, 1, 4, 2, 5, 3).reshape(x.shape)
    return (x - grid * m)[..., :h, :w]


def sobel(image: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Sobel gradient magnitude of the luma (of an RGB image; a one-channel image is its own luma),
    replicate borders so a flat image gives zero: ``(..., C, H, W)`` -> ``(..., 1, H, W)``, in
    ``[0, 4 sqrt 2]``. Losses pass a tiny ``eps`` under the root to keep the gradient finite on
    flat regions."""
    gray = grayscale(image) if image.shape[-3] == 3 else image.mean(dim=-3, keepdim=True)
    flat = F.pad(gray.reshape(-1, 1, *gray.shape[-2:]), (1, 1, 1, 1), mode="replicate")
    kx = SOBEL_X.to(image)[None, None]
    gx, gy = F.conv2d(flat, kx), F.conv2d(flat, kx.transpose(-1, -2))
    return torch.sqrt(gx**2 + gy**2 + eps).reshape(gray.shape)


def apply_kernel(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each channel convolved with ``kernel`` (odd side, replicate borders), clipped to [0, 1]."""
    c = image.shape[-3]
    r = kernel.shape[-1] // 2
    flat = F.pad(image.reshape(-1, c, *image.shape[-2:]), (r, r, r, r), mode="replicate")
    out = F.conv2d(flat, kernel.to(image).view(1, 1, *kernel.shape).repeat(c, 1, 1, 1), groups=c)
    return out.clamp(0, 1).reshape(image.shape)
