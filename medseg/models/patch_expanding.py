"""Swin-UNet's patch expanding layer (Cao et al. 2022).

Ours because timm has only the down-sampling counterpart (`PatchMerging`).
"""

from __future__ import annotations

import torch
from torch import nn


class PatchExpanding(nn.Module):
    """A bias-free linear layer to scale**2 * out_dim channels, each token unfolded into a
    scale x scale block of out_dim-channel tokens, then LayerNorm. NHWC in and out.

    scale 2, out_dim dim/2 is Cao et al.'s `PatchExpand`; scale 4, out_dim dim their `FinalPatchExpand_X4`.
    """

    def __init__(self, dim: int, scale: int, out_dim: int) -> None:
        super().__init__()
        self.scale = scale
        self.out_dim = out_dim
        self.expand = nn.Linear(dim, scale * scale * out_dim, bias=False)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, _ = x.shape
        s = self.scale
        # Channels split as (row offset, column offset, channel), as einops' "(p1 p2 c)" in Cao et al.
        x = self.expand(x).view(batch, height, width, s, s, self.out_dim)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, height * s, width * s, self.out_dim)
        return self.norm(x)
