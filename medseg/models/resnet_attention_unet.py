"""ResNet50 Attention U-Net (paper Appendix A.1.2): timm's ResNet50 encoder, attention-gated decoder."""

from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from torch import nn

from medseg.models.attention import AttentionGate
from medseg.models.blocks import ConvBlock
from medseg.models.encoder import Encoder, Level
from medseg.models.init import init_convnet
from medseg.models.sizes import check_image_size, scaled_width

DECODER_CHANNELS = (256, 128, 64, 32, 16)


class ResNet50Encoder(Encoder):
    """timm's `resnet50` (no convolution biases, stochastic depth 0.1) as five levels.

    Levels: the stem's 7x7 convolution output (64 channels, stride 2) and the four stages
    (256, 512, 1024, 2048 channels at strides 4, 8, 16, 32). `width` scales the stage widths
    through timm's `channels` option (64 * width * (1, 2, 4, 8) bottleneck planes); timm keeps a
    single-convolution stem at 64 channels whatever the width.
    """

    name = "resnet50"
    init_scheme = staticmethod(init_convnet)

    def __init__(self, image_size: int, width: float = 1.0) -> None:
        super().__init__(image_size, width)
        check_image_size("resnet50_attention_unet", image_size, 32)
        planes = scaled_width(64, width, 1, "ResNet50 first-stage width")
        self.body = timm.create_model(
            "resnet50",
            pretrained=False,
            features_only=True,
            out_indices=(0, 1, 2, 3, 4),
            channels=tuple(planes * 2**i for i in range(4)),
            drop_path_rate=0.1,
        )
        info = self.body.feature_info
        self.levels = tuple(Level(c, s) for c, s in zip(info.channels(), info.reduction()))
        init_convnet(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.body(x)


class AttentionDecoder(nn.Module):
    """Five levels of bilinear 2x upsampling and `ConvBlock` (256, 128, 64, 32, 16 channels * width).

    The first four concatenate an attention-gated skip (ResNet stages 3, 2, 1, then the stem),
    gated by the previous decoder output; the fifth has no skip. A 1x1 convolution is the head.
    """

    def __init__(self, encoder: ResNet50Encoder, num_classes: int) -> None:
        super().__init__()
        widths = [scaled_width(c, encoder.width, 1, "decoder width") for c in DECODER_CHANNELS]
        skip_channels = [level.channels for level in reversed(encoder.levels[:-1])]
        gate_channels = [encoder.levels[-1].channels, *widths[: len(skip_channels) - 1]]
        self.gates = nn.ModuleList(AttentionGate(s, g) for s, g in zip(skip_channels, gate_channels))
        self.blocks = nn.ModuleList(ConvBlock(g + s, w) for g, s, w in zip(gate_channels, skip_channels, widths))
        self.final_block = ConvBlock(widths[-2], widths[-1])
        self.final_scale = encoder.levels[0].stride
        self.head = nn.Conv2d(widths[-1], num_classes, 1)
        init_convnet(self)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        *skips, x = features
        for gate, block, skip in zip(self.gates, self.blocks, reversed(skips)):
            gated = gate(skip, x)
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, gated], dim=1))
        x = F.interpolate(x, scale_factor=self.final_scale, mode="bilinear", align_corners=False)
        return self.head(self.final_block(x))
