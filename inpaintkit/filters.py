"""Fixed image filters on tensors ``(..., C, H, W)``: luma, Gaussian blur, Sobel, a convolution.

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


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (radius ``ceil(3 sigma)``, replicate borders); a no-op for ``sigma <= 0``."""
    if sigma <= 0:
        return image
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    c = image.shape[-3]
    flat = image.reshape(-1, c, *image.shape[-2:])
    flat = F.pad(flat, (radius, radius, radius, radius), mode="replicate")
    flat = F.conv2d(flat, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    flat = F.conv2d(flat, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return flat.reshape(image.shape)


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
