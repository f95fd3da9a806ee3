"""A LaMa-style generator (Suvorov et al., 2022): three strided convolutions down, residual blocks of
Fast Fourier Convolutions whose global branch sees the whole image, three transposed convolutions up.

The spectral branch gives every layer an image-wide receptive field, which is what lets large holes
be filled with plausible, repeating structure. ``ffc-lama`` is LaMa-Fourier's size (64 base
channels, 9 blocks, about 27M parameters); smaller builders trade capacity for CPU speed.

With a ``prefill`` (``biharmonic``, the default of ``ffc``, ``telea`` or ``push-pull``), the hole
is first filled by a classical method and the network predicts a correction in logit space,
through a last layer that starts at zero: an untrained network returns the classical fill, and
training only has to add what it lacks (texture, edges, structure). This makes the most of a small
training budget.
``biharmonic`` (the thin-plate fill, solved by a cascadic conjugate gradient in torch) is the best
start, well ahead of Telea on smooth content such as faces. ``push-pull`` (a smooth pyramid fill)
is the only one that exports to ONNX; ``telea`` (OpenCV's fast marching) runs outside the graph,
and the biharmonic solver's loop depends on the image size.
"""

from __future__ import annotations

import torch
from torch import nn

from inpaintkit.models.base import Generator
from inpaintkit.models.layers import ConvNormAct, FFCResBlock, UpNormAct, biharmonic_fill, push_pull_fill, telea_fill
from inpaintkit.models.registry import register

PREFILLS = {"biharmonic": biharmonic_fill, "telea": telea_fill, "push-pull": push_pull_fill}
NOT_EXPORTABLE = {
    "biharmonic": "its biharmonic prefill loops over a pyramid whose depth depends on the image size",
    "telea": "its telea prefill runs OpenCV outside the graph",
}


class Prefill(nn.Module):
    """The classical fill (no weights) the network refines: a module of its own, so summaries and
    architecture diagrams show it as one step."""

    def __init__(self, name: str):
        super().__init__()
        self.name, self.fill = name, PREFILLS[name]

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.fill(image, mask)

    def extra_repr(self) -> str:
        return self.name


class FFCGenerator(Generator):
    """A prefill refines an RGB fill: with another number of output channels (a Sobel map) the
    network starts from scratch and ``prefill`` is not used."""

    builder = "ffc"
    size_multiple = 8
    min_size = 16  # two pixels at 1/8 scale, the least the reflect padding there accepts

    def __init__(
        self,
        width: int = 64,
        blocks: int = 9,
        global_ratio: float = 0.75,
        out_channels: int = 3,
        prefill: str = "biharmonic",
    ):
        super().__init__()
        if prefill != "none" and prefill not in PREFILLS:
            raise ValueError(f"prefill must be none, {', '.join(PREFILLS)}; got {prefill!r}")
        used = prefill if out_channels == 3 else "none"
        self.prefill = Prefill(used) if used in PREFILLS else None
        reason = NOT_EXPORTABLE.get(used)
        self.not_exportable_because = reason and f"{reason} (a push-pull prefill exports)"
        self.stem = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(4, width, 7, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        self.down = nn.Sequential(
            ConvNormAct(width, 2 * width, 3, stride=2),
            ConvNormAct(2 * width, 4 * width, 3, stride=2),
            ConvNormAct(4 * width, 8 * width, 3, stride=2),
        )
        self.blocks = nn.Sequential(*[FFCResBlock(8 * width, global_ratio) for _ in range(blocks)])
        self.up = nn.Sequential(
            UpNormAct(8 * width, 4 * width, kernel=3),
            UpNormAct(4 * width, 2 * width, kernel=3),
            UpNormAct(2 * width, width, kernel=3),
        )
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7))
        if self.prefill:
            nn.init.zeros_(self.head[1].weight)
            nn.init.zeros_(self.head[1].bias)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.prefill:
            image = mask * self.prefill(image, mask) + (1 - mask) * image
        x = torch.cat([image, mask], dim=1)
        x = self.blocks(self.down(self.stem(x)))  # (B, 8w, H/8, W/8)
        logits = self.head(self.up(x))
        if self.prefill:
            logits = logits + torch.logit(image.clamp(1e-3, 1 - 1e-3))
        return torch.sigmoid(logits)


@register("ffc", parameters=4_780_899)
def ffc(
    width: int = 32, blocks: int = 6, global_ratio: float = 0.75, out_channels: int = 3, prefill: str = "biharmonic"
) -> FFCGenerator:
    """Fourier-convolution generator, LaMa-style, sized for CPU, refining a classical prefill."""
    return FFCGenerator(width, blocks, global_ratio, out_channels, prefill)


@register("ffc-lama", parameters=27_048_387)
def ffc_lama(width: int = 64, blocks: int = 9, global_ratio: float = 0.75, out_channels: int = 3):
    """Fourier-convolution generator at LaMa-Fourier's size (64 base channels, 9 FFC blocks)."""
    return FFCGenerator(width, blocks, global_ratio, out_channels, prefill="none")
