"""A LaMa-style generator (Suvorov et al., 2022): three strided convolutions down, residual blocks of
Fast Fourier Convolutions whose global branch sees the whole image, three transposed convolutions up.

The spectral branch gives every layer an image-wide receptive field, which is what lets large holes
be filled with plausible, repeating structure. ``ffc-lama`` is LaMa-Fourier's size (64 base
channels, 9 blocks, about 27M parameters); smaller builders trade capacity for CPU speed.
"""

from __future__ import annotations

import torch
from torch import nn

from inpaintkit.models.layers import ConvNormAct, FFCResBlock, UpNormAct, masked_input


class FFCGenerator(nn.Module):
    size_multiple = 8

    def __init__(self, width: int = 64, blocks: int = 9, global_ratio: float = 0.75, out_channels: int = 3):
        super().__init__()
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

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.down(self.stem(masked_input(image, mask)))  # (B, 8w, H/8, W/8)
        x = self.blocks(x)
        return torch.sigmoid(self.head(self.up(x)))


def ffc(width: int = 32, blocks: int = 6, global_ratio: float = 0.75, out_channels: int = 3) -> FFCGenerator:
    """Fourier-convolution generator, LaMa-style, sized for CPU (32 base channels, 6 FFC blocks)."""
    return FFCGenerator(width, blocks, global_ratio, out_channels)


def ffc_lama(width: int = 64, blocks: int = 9, global_ratio: float = 0.75, out_channels: int = 3):
    """Fourier-convolution generator at LaMa-Fourier's size (64 base channels, 9 FFC blocks)."""
    return FFCGenerator(width, blocks, global_ratio, out_channels)
