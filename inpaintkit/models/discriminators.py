"""PatchGAN discriminators (Isola et al., 2017): each output logit judges one receptive-field patch.

``forward(image, mask)`` returns ``(logits (B, 1, h, w), features)``; the intermediate features
feed the feature-matching loss. The mask is an input channel, so the critic knows where the hole is.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm

from inpaintkit.models.layers import norm_layer
from inpaintkit.models.registry import register


class PatchGAN(nn.Module):
    def __init__(
        self,
        width: int = 64,
        layers: int = 3,
        in_channels: int = 4,
        norm: str = "batch",
        spectral: bool = False,
    ):
        super().__init__()

        def conv(cin: int, cout: int, stride: int, bias: bool) -> nn.Module:
            c = nn.Conv2d(cin, cout, 4, stride, 1, bias=bias)
            return spectral_norm(c) if spectral else c

        norm = "none" if spectral else norm
        blocks = [nn.Sequential(conv(in_channels, width, 2, True), nn.LeakyReLU(0.2, inplace=True))]
        cin = width
        for i in range(1, layers + 1):
            cout = width * min(2**i, 8)
            stride = 2 if i < layers else 1
            blocks.append(
                nn.Sequential(conv(cin, cout, stride, norm == "none"), norm_layer(norm, cout), nn.LeakyReLU(0.2, True))
            )
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = conv(cin, 1, 1, True)

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``image`` is judged given ``condition`` (the mask when inpainting, the input photo otherwise)."""
        x = torch.cat([image, condition], dim=1)
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return self.head(x), features


@register("patchgan", parameters=2_766_657, kind="discriminator")
def patchgan(
    width: int = 64, layers: int = 3, norm: str = "batch", spectral: bool = False, in_channels: int = 4
) -> PatchGAN:
    """70x70 PatchGAN (pix2pix)."""
    return PatchGAN(width, layers, in_channels, norm, spectral)


@register("patchgan-light", parameters=44_777, kind="discriminator")
def patchgan_light(
    width: int = 8, layers: int = 3, norm: str = "batch", spectral: bool = False, in_channels: int = 4
) -> PatchGAN:
    """A light PatchGAN of tens of thousands of parameters (self-attention U-Net GAN)."""
    return PatchGAN(width, layers, in_channels, norm, spectral)


@register("patchgan-lama", parameters=6_961_985, kind="discriminator")
def patchgan_lama(
    width: int = 64, layers: int = 4, norm: str = "batch", spectral: bool = False, in_channels: int = 4
) -> PatchGAN:
    """LaMa's discriminator: PatchGAN with four layers."""
    return PatchGAN(width, layers, in_channels, norm, spectral)
