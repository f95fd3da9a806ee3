"""What one training example is. A task turns a clean photo ``(3, H, W)`` in [0, 1] and a mask into
``(input, target, mask)``; the same models, trainer, metrics and bench then learn any of them.

- ``inpaint``: input = the photo (the model zeroes the hole), target = the photo, mask from a spec;
- ``outpaint``: the same with border bands as masks;
- ``sobel``: target = Sobel gradient magnitude of the grayscale photo (optionally blurred first),
  scaled by 1/(4 sqrt 2) into [0, 1], one channel; mask all zero;
- ``filter``: target = the photo convolved with a fixed kernel drawn from a seed (or given);
- ``denoise``: input = photo + Gaussian noise of ``sigma`` (or a range), clipped; target = photo.

Inpainting results are composited with the input (known pixels kept); other tasks' outputs are used
whole, and their metrics are on the whole image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from inpaintkit.errors import InpaintError

SOBEL_SCALE = 1.0 / (4.0 * math.sqrt(2.0))  # the largest magnitude of a [0, 1] image is 4 sqrt 2


def grayscale(image: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of ``(..., 3, H, W)`` -> ``(..., 1, H, W)``."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * weights).sum(dim=-3, keepdim=True)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
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


def sobel_magnitude(image: torch.Tensor, blur: float = 0.0) -> torch.Tensor:
    """Sobel gradient magnitude of the grayscale photo (replicate borders), scaled into [0, 1]."""
    from inpaintkit.losses import SOBEL_X

    gray = gaussian_blur(grayscale(image), blur)
    flat = F.pad(gray.reshape(-1, 1, *gray.shape[-2:]), (1, 1, 1, 1), mode="replicate")
    kx = SOBEL_X.to(image)[None, None]
    gx, gy = F.conv2d(flat, kx), F.conv2d(flat, kx.transpose(-1, -2))
    return (torch.sqrt(gx**2 + gy**2) * SOBEL_SCALE).clamp(0, 1).reshape(gray.shape)


def random_kernel(seed: int, size: int = 5) -> torch.Tensor:
    """A fixed ``size`` x ``size`` kernel drawn from ``seed``: normal entries, normalised to sum 1 so
    the output stays in range for most photos (values are clipped to [0, 1])."""
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(size, size))
    k = k - k.mean() + 1.0 / (size * size)
    return torch.from_numpy(k / np.abs(k).sum() * 1.5).float()


def apply_kernel(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    c = image.shape[-3]
    r = kernel.shape[-1] // 2
    flat = F.pad(image.reshape(-1, c, *image.shape[-2:]), (r, r, r, r), mode="replicate")
    out = F.conv2d(flat, kernel.to(image).view(1, 1, *kernel.shape).repeat(c, 1, 1, 1), groups=c)
    return out.clamp(0, 1).reshape(image.shape)


@dataclass
class Task:
    name: str = "inpaint"
    blur: float = 0.0  # sobel: Gaussian blur sigma before the gradient
    kernel: list | None = None  # filter: an explicit kernel (square, odd side)
    kernel_seed: int = 0  # filter: the seed the kernel is drawn from when none is given
    sigma: list = field(default_factory=lambda: [25 / 255, 25 / 255])  # denoise: noise sigma range

    def __post_init__(self):
        if self.name not in TASKS:
            raise InpaintError(f"unknown task {self.name!r}; choose from {', '.join(TASKS)}")
        if self.kernel is not None:
            k = torch.tensor(self.kernel, dtype=torch.float32)
            if k.dim() != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
                raise InpaintError("task kernel must be a square list of lists with an odd side")
        if len(self.sigma) != 2 or not 0 <= self.sigma[0] <= self.sigma[1]:
            raise InpaintError("task sigma must be [low, high] with 0 <= low <= high")

    @property
    def composite(self) -> bool:
        return self.name in ("inpaint", "outpaint")

    @property
    def out_channels(self) -> int:
        return 1 if self.name == "sobel" else 3

    @property
    def filter_kernel(self) -> torch.Tensor:
        if self.kernel is not None:
            return torch.tensor(self.kernel, dtype=torch.float32)
        return random_kernel(self.kernel_seed)

    def make(
        self, image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``image (3, H, W)``, ``mask (1, H, W)`` -> ``(input, target, mask)``."""
        if self.composite:
            return image, image, mask
        zero = torch.zeros_like(mask)
        if self.name == "sobel":
            return image, sobel_magnitude(image, self.blur), zero
        if self.name == "filter":
            return image, apply_kernel(image, self.filter_kernel), zero
        sigma = rng.uniform(*self.sigma)
        noise = torch.from_numpy(rng.standard_normal(image.shape).astype(np.float32)) * sigma
        return (image + noise).clamp(0, 1), image, zero

    def target_of(self, image: torch.Tensor) -> torch.Tensor:
        """The exact target for a clean photo (the ground truth a filter model is compared with)."""
        return self.make(image, torch.zeros_like(image[..., :1, :, :]), np.random.default_rng(0))[1]


TASKS = ("inpaint", "outpaint", "sobel", "filter", "denoise")
