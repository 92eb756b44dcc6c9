"""Basic U-Net (paper Appendix A.1.1; Ronneberger et al. with BatchNorm and padded convolutions)."""

from __future__ import annotations

import torch
from torch import nn

from medseg.models.blocks import ConvBlock
from medseg.models.encoder import Encoder, Level
from medseg.models.init import init_convnet
from medseg.models.sizes import check_image_size, scaled_width

DEPTH = 5


class UNetEncoder(Encoder):
    """A 3x3 convolution to the base width, then five levels of `ConvBlock` with 2x2 max-pooling between.

    Level channels are base * (1, 2, 4, 8, 16) at strides 1, 2, 4, 8, 16; base = 64 * width.
    """

    name = "unet_encoder"
    init_scheme = staticmethod(init_convnet)

    def __init__(self, image_size: int, width: float = 1.0) -> None:
        super().__init__(image_size, width)
        check_image_size("unet", image_size, 2 ** (DEPTH - 1))
        base = scaled_width(64, width, 1, "U-Net base width")
        channels = [base * 2**i for i in range(DEPTH)]
        self.levels = tuple(Level(c, 2**i) for i, c in enumerate(channels))
        self.stem = nn.Conv2d(3, base, 3, padding=1)
        self.stages = nn.ModuleList(
            [ConvBlock(base, base)]
            + [nn.Sequential(nn.MaxPool2d(2), ConvBlock(c_in, c_out)) for c_in, c_out in zip(channels, channels[1:])]
        )
        init_convnet(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class UNetDecoder(nn.Module):
    """Four levels of 2x2 up-convolution (halving channels), concatenation with the skip, `ConvBlock`; 1x1 head."""

    def __init__(self, encoder: UNetEncoder, num_classes: int) -> None:
        super().__init__()
        channels = [level.channels for level in reversed(encoder.levels)]
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, 2, stride=2) for c_in, c_out in zip(channels, channels[1:])
        )
        self.blocks = nn.ModuleList(ConvBlock(2 * c_out, c_out) for c_out in channels[1:])
        self.head = nn.Conv2d(channels[-1], num_classes, 1)
        init_convnet(self)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        *skips, x = features
        for up, block, skip in zip(self.ups, self.blocks, reversed(skips)):
            x = block(torch.cat([up(x), skip], dim=1))
        return self.head(x)
