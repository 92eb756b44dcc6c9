"""A segmentation model: an `Encoder` and a decoder, with a frozen-encoder mode."""

from __future__ import annotations

import torch
from torch import nn

from medseg.models.encoder import Encoder


class SegmentationModel(nn.Module):
    """`decoder(encoder(x))`: logits with `num_classes` channels at the input's spatial size."""

    def __init__(self, name: str, encoder: Encoder, decoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.name = name
        self.num_classes = num_classes
        self.encoder = encoder
        self.decoder = decoder
        self.encoder_frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def freeze_encoder(self) -> None:
        """Decoder-only training: the encoder becomes a fixed feature extractor.

        Its parameters get no gradients, and it stays in eval mode even under `train()`, so
        BatchNorm statistics are not updated and stochastic depth is off.
        """
        self.encoder.requires_grad_(False)
        self.encoder_frozen = True
        self.encoder.eval()

    def train(self, mode: bool = True) -> SegmentationModel:
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()
        return self
