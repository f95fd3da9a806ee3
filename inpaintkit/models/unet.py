"""U-Net (Ronneberger et al., 2015) for inpainting: three encoder blocks, a bottleneck, and a
decoder that concatenates the encoder's features at each scale."""

from __future__ import annotations

import torch
from torch import nn

from inpaintkit.models.base import Generator
from inpaintkit.models.layers import ConvNormAct
from inpaintkit.models.registry import register


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: str = "batch"):
        super().__init__(ConvNormAct(cin, cout, norm=norm), ConvNormAct(cout, cout, norm=norm))


class UNet(Generator):
    builder = "unet"
    size_multiple = 8

    def __init__(self, width: int = 32, in_channels: int = 3, out_channels: int = 3, norm: str = "batch"):
        super().__init__()
        w = [width, 2 * width, 4 * width, 8 * width]
        self.enc1 = DoubleConv(in_channels + 1, w[0], norm)
        self.enc2 = DoubleConv(w[0], w[1], norm)
        self.enc3 = DoubleConv(w[1], w[2], norm)
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(w[2], w[3], norm)
        self.up3 = nn.ConvTranspose2d(w[3], w[2], 2, stride=2)
        self.dec3 = DoubleConv(2 * w[2], w[2], norm)
        self.up2 = nn.ConvTranspose2d(w[2], w[1], 2, stride=2)
        self.dec2 = DoubleConv(2 * w[1], w[1], norm)
        self.up1 = nn.ConvTranspose2d(w[1], w[0], 2, stride=2)
        self.dec1 = DoubleConv(2 * w[0], w[0], norm)
        self.head = nn.Conv2d(w[0], out_channels, 1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(torch.cat([image, mask], dim=1))  # (B, w, H, W)
        e2 = self.enc2(self.pool(e1))  # (B, 2w, H/2, W/2)
        e3 = self.enc3(self.pool(e2))  # (B, 4w, H/4, W/4)
        b = self.bottleneck(self.pool(e3))  # (B, 8w, H/8, W/8)
        d3 = self.dec3(torch.cat([self.up3(b), e3], dim=1))
        d2 = self.dec2(torch.cat([self.up2(d3), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return torch.sigmoid(self.head(d1))


@register("unet", parameters=2_716_927)
def unet(width: int = 38, in_channels: int = 3, out_channels: int = 3, norm: str = "batch") -> UNet:
    """U-Net, three encoder blocks and skip connections (landscape inpainting, about 2.7M parameters)."""
    return UNet(width, in_channels, out_channels, norm)
