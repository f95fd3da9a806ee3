"""Context encoder (Pathak et al., 2016): an AlexNet-shaped encoder, a channel-wise fully connected
bottleneck, and a transposed-convolution decoder.

The channel-wise FC layer connects every position of a feature map to every other position of the
same map (no weights across channels), then a 1x1 convolution mixes channels. Its weight is an
``nn.Parameter`` and is trained (a reference implementation left it an unregistered tensor, so it
never learned). A fully connected layer fixes the spatial size, so the network runs at
``image_size`` internally and its output is resized back to the input's size.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from inpaintkit.backbones import IMAGENET_MEAN, IMAGENET_STD, AlexNetFeatures, pretrained_trunk
from inpaintkit.models.base import Generator
from inpaintkit.models.layers import UpNormAct, resize_to
from inpaintkit.models.registry import register


class ChannelWiseFC(nn.Module):
    """A dense ``N x N`` map per channel over its ``N = h * w`` positions, then a 1x1 conv."""

    def __init__(self, channels: int, positions: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels, positions, positions) / math.sqrt(positions))
        self.bias = nn.Parameter(torch.zeros(channels, positions))
        self.mix = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        flat = x.flatten(2)  # (B, C, N)
        out = torch.einsum("bcn,cnm->bcm", flat, self.weight) + self.bias  # (B, C, N)
        return self.mix(torch.relu(out).view(b, c, h, w))


class ContextEncoder(Generator):
    builder = "context-encoder-alexnet"

    def __init__(self, image_size: int = 128, pretrained: bool = False, freeze_encoder: bool = False):
        super().__init__()
        self.image_size = image_size
        self.freeze_encoder = freeze_encoder
        trunk = pretrained_trunk("alexnet") if pretrained else AlexNetFeatures()
        # A fourth input channel for the mask; zero-initialised so pretrained features start unchanged.
        rgb_conv = trunk.features[0]
        conv = nn.Conv2d(4, 64, 11, stride=4, padding=2)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[:, :3] = rgb_conv.weight
            conv.bias.copy_(rgb_conv.bias)
        trunk.features[0] = conv
        self.encoder = trunk.features
        if freeze_encoder:
            self.encoder.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        with torch.no_grad():
            grid = self.encoder(torch.zeros(1, 4, image_size, image_size)).shape[-1]
        self.bottleneck = ChannelWiseFC(256, grid * grid)
        ups = max(1, round(math.log2(image_size / grid)))
        widths = [256, 256, 128, 64, 32, 32][: ups + 1]
        self.decoder = nn.Sequential(
            *[UpNormAct(cin, cout) for cin, cout in zip(widths[:-1], widths[1:], strict=True)],
            nn.Conv2d(widths[-1], 3, 3, padding=1),
        )

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()  # frozen means frozen statistics too
        return self

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        # The hole reads as zero after ImageNet normalisation: the mean colour, as in Pathak et al.
        x = torch.cat([(image - self.mean) / self.std * (1 - mask), mask], dim=1)
        x = resize_to(x, (self.image_size, self.image_size))
        x = self.bottleneck(self.encoder(x))  # (B, 256, g, g)
        x = self.decoder(x)  # (B, 3, g * 2**ups, ...)
        return torch.sigmoid(resize_to(x, (h, w)))


@register("context-encoder", parameters=4_908_963)
def context_encoder(image_size: int = 128) -> ContextEncoder:
    """Context encoder: AlexNet-shaped encoder, channel-wise FC bottleneck, transposed-conv decoder."""
    return ContextEncoder(image_size)


@register("context-encoder-alexnet", parameters=11_636_643)
def context_encoder_alexnet(image_size: int = 224, freeze_encoder: bool = True, pretrained: bool = True):
    """Context encoder whose encoder starts from ImageNet AlexNet (frozen or fine-tuned)."""
    return ContextEncoder(image_size, pretrained=pretrained, freeze_encoder=freeze_encoder)
