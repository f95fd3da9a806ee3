"""Plain convolutional autoencoders: the landscape encoder-decoder and the tiny filter-learning net."""

from __future__ import annotations

import torch
from torch import nn

from inpaintkit.models.base import Generator
from inpaintkit.models.layers import ConvNormAct, UpNormAct
from inpaintkit.models.registry import register


class EncoderDecoder(Generator):
    """Strided conv-BN-ReLU encoder, mirrored transposed-conv decoder, no skip connections."""

    builder = "encoder-decoder"

    def __init__(self, width: int = 32, depth: int = 4, out_channels: int = 3):
        super().__init__()
        widths = [width * 2**i for i in range(depth)]  # 32, 64, 128, 256
        self.size_multiple = 2**depth
        self.encoder = nn.Sequential(
            *[ConvNormAct(cin, cout, 3, stride=2) for cin, cout in zip([4, *widths[:-1]], widths, strict=True)]
        )
        ups = [UpNormAct(cin, cout, kernel=3) for cin, cout in zip(widths[::-1], widths[::-1][1:], strict=False)]
        self.decoder = nn.Sequential(*ups, nn.ConvTranspose2d(widths[0], out_channels, 4, 2, 1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.encoder(torch.cat([image, mask], dim=1))  # (B, 8w, H/16, W/16)
        return torch.sigmoid(self.decoder(x))


class ConvAutoencoder(Generator):
    """Two convolutions down, two transposed convolutions up (about 10k parameters). Without
    ``use_mask`` it sees the (masked) image alone, as filter-learning nets do."""

    builder = "conv-autoencoder"
    size_multiple = 4

    def __init__(self, width: int = 16, in_channels: int = 3, out_channels: int = 3, use_mask: bool = True):
        super().__init__()
        self.use_mask = use_mask
        cin = in_channels + int(use_mask)
        self.net = nn.Sequential(
            nn.Conv2d(cin, width, 3, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, 2, 1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * width, width, 3, 2, 1, output_padding=1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, out_channels, 3, 2, 1, output_padding=1),
        )  # fmt: skip

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image, mask], dim=1) if self.use_mask else image
        return torch.sigmoid(self.net(x))


@register("encoder-decoder", parameters=778_243)
def encoder_decoder(width: int = 32, depth: int = 4, out_channels: int = 3) -> EncoderDecoder:
    """Conv-BN-ReLU encoder and mirrored decoder, no skips (landscape inpainting baseline)."""
    return EncoderDecoder(width, depth, out_channels)


@register("conv-autoencoder", parameters=10_291)
def conv_autoencoder(width: int = 16, in_channels: int = 3, out_channels: int = 3, use_mask: bool = True):
    """Tiny two-conv, two-deconv autoencoder (learning filters such as Sobel)."""
    return ConvAutoencoder(width, in_channels, out_channels, use_mask)
