"""The additive attention gate of Attention U-Net (Oktay et al. 2018, Fig. 2).

Ours because timm has no attention gate. The paper (Appendix A.1.2) uses gates "identical to
that of Attention U-Net" (its ref. [19], Schlemper, Oktay et al. 2019), so this follows Oktay et
al.: one attention coefficient per pixel, shared by all skip channels. The authors' released
code differs here (its gate computes one coefficient per skip channel); we follow the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AttentionGate(nn.Module):
    """Scale a skip connection x by alpha = sigmoid(psi(relu(W_x x + W_g g + b_g)) + b_psi).

    The gating signal g comes from the next coarser level (half x's resolution): W_x is a 2x2
    convolution with stride 2 that brings x to g's grid, and alpha is resampled bilinearly to x's.
    """

    def __init__(self, skip_channels: int, gate_channels: int) -> None:
        super().__init__()
        inter_channels = max(skip_channels // 2, 1)  # Oktay et al.'s default: half the skip's channels
        self.theta = nn.Conv2d(skip_channels, inter_channels, 2, stride=2, bias=False)
        self.phi = nn.Conv2d(gate_channels, inter_channels, 1)
        self.psi = nn.Conv2d(inter_channels, 1, 1)

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        alpha = torch.sigmoid(self.psi(F.relu(self.theta(skip) + self.phi(gate))))
        alpha = F.interpolate(alpha, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return skip * alpha
