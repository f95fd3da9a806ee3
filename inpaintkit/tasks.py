"""What one training example is. A task turns a clean photo ``(3, H, W)`` in [0, 1] and a mask into
``(input, target, mask)``; the same models, trainer, metrics and bench then learn any of them.

- ``inpaint``: input = the photo (the runner hides the hole from the model), target = the photo,
  mask from a spec;
- ``outpaint``: the same with border bands as masks;
- ``sobel``: target = Sobel gradient magnitude of the grayscale photo (optionally blurred first),
  scaled by 1/(4 sqrt 2) into [0, 1], one channel; mask all zero;
- ``filter``: target = the photo convolved with a fixed kernel drawn from a seed (or given);
- ``denoise``: input = photo + Gaussian noise of ``sigma`` (or a range), clipped; target = photo.

Inpainting results are composited with the input (known pixels kept); other tasks' outputs are used
whole, and their metrics are on the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from inpaintkit.errors import InpaintError
from inpaintkit.filters import SOBEL_SCALE, apply_kernel, gaussian_blur, grayscale, sobel

INPAINTING_TASKS = ("inpaint", "outpaint")
IMAGE_TASKS = ("sobel", "filter", "denoise")  # image-to-image: no hole, the output is used whole
TASKS = INPAINTING_TASKS + IMAGE_TASKS


def is_inpainting(task: str) -> bool:
    """Whether ``task`` fills a hole (its results are composited with the input)."""
    return task in INPAINTING_TASKS


def sobel_magnitude(image: torch.Tensor, blur: float = 0.0) -> torch.Tensor:
    """The ``sobel`` task's target: the Sobel magnitude of the (optionally blurred) luma, in [0, 1]."""
    return (sobel(gaussian_blur(grayscale(image), blur)) * SOBEL_SCALE).clamp(0, 1)


def random_kernel(seed: int, size: int = 5) -> torch.Tensor:
    """A fixed ``size`` x ``size`` kernel drawn from ``seed``: normal entries, normalised to sum 1 so
    the output stays in range for most photos (values are clipped to [0, 1])."""
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(size, size))
    k = k - k.mean() + 1.0 / (size * size)
    return torch.from_numpy(k / np.abs(k).sum() * 1.5).float()


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
        """Whether results are composited with the input (the inpainting tasks)."""
        return is_inpainting(self.name)

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
