"""The pretraining model: an encoder with a classification head (paper §3.1)."""

from __future__ import annotations

import torch
from torch import nn

from medseg.models.encoder import Encoder


class EncoderClassifier(nn.Module):
    """Global average pooling of the encoder's last level, then one linear layer."""

    def __init__(self, encoder: Encoder, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.levels[-1].channels, num_classes)
        encoder.init_scheme(self.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)[-1].mean(dim=(2, 3)))
