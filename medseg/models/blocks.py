"""Convolution blocks shared by the convolutional encoders and decoders."""

from __future__ import annotations

from torch import nn


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions (padded, so the spatial size is kept), each followed by BatchNorm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        # No convolution bias: the BatchNorm shift that follows makes it redundant.
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
