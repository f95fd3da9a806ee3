"""U-Net with SAGAN self-attention at the bottleneck, trained against a light PatchGAN.

At the bottleneck (1/8 resolution) every position can attend to every other one, which lets the
fill borrow texture from far across the image at a cost quadratic in (H/8)(W/8).
"""

from __future__ import annotations

from torch import nn

from inpaintkit.models.layers import SelfAttention
from inpaintkit.models.registry import register
from inpaintkit.models.unet import UNet


class AttentionUNet(UNet):
    builder = "attention-unet"

    def __init__(self, width: int = 32, in_channels: int = 3, out_channels: int = 3, norm: str = "batch"):
        super().__init__(width, in_channels, out_channels, norm)
        self.bottleneck = nn.Sequential(self.bottleneck, SelfAttention(8 * width))


@register("attention-unet", parameters=2_009_604)
def attention_unet(width: int = 32, in_channels: int = 3, out_channels: int = 3, norm: str = "batch"):
    """U-Net with a self-attention block (query/key at C/8) at the bottleneck."""
    return AttentionUNet(width, in_channels, out_channels, norm)
