"""The pix2pix generator (Isola et al., 2017): a U-Net of ``depth`` stride-2 4x4 convolutions down
and as many transposed convolutions up, dropout in the three innermost decoder layers. At 256 px and
depth 8 the bottleneck is 1x1. Trained with a 70x70 PatchGAN (see ``discriminators.py``)."""

from __future__ import annotations

import torch
from torch import nn

from inpaintkit.models.base import Generator
from inpaintkit.models.registry import register


class Pix2PixUNet(Generator):
    builder = "pix2pix"

    def __init__(self, width: int = 64, depth: int = 8, in_channels: int = 3, out_channels: int = 3):
        super().__init__()
        self.size_multiple = 2**depth
        chans = [min(width * 2**i, width * 8) for i in range(depth)]  # 64, 128, 256, 512, 512, ...
        self.down = nn.ModuleList()
        for i, cout in enumerate(chans):
            cin = in_channels + 1 if i == 0 else chans[i - 1]
            layers = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=True)]
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=i in (0, depth - 1)))
            if 0 < i < depth - 1:  # no norm on the first layer, nor at the 1x1 innermost
                layers.append(nn.BatchNorm2d(cout))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            cin = chans[i] if i == depth - 1 else 2 * chans[i]
            cout = out_channels if i == 0 else chans[i - 1]
            layers = [nn.ReLU(inplace=True), nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
            if 0 < depth - 1 - i < 4 and i > 0:  # the three decoder layers after the innermost
                layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image, mask], dim=1)
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = self.up[0](skips.pop())  # innermost: no skip to concatenate yet
        for layer in self.up[1:]:
            x = layer(torch.cat([x, skips.pop()], dim=1))
        return torch.sigmoid(x)


@register("pix2pix", parameters=54_415_555)
def pix2pix(width: int = 64, depth: int = 8, in_channels: int = 3, out_channels: int = 3) -> Pix2PixUNet:
    """pix2pix U-Net generator: 8 down / 8 up at 256 px, dropout in the inner decoder."""
    return Pix2PixUNet(width, depth, in_channels, out_channels)
