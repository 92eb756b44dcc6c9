"""Representations for robustness: an encoder level, pooled over space or flattened (paper §6, §7.3)."""

from __future__ import annotations

import torch

from medseg.models.encoder import Encoder
from medseg.names import LEVELS, POOLINGS

# Every representation one forward pass gives: (level, pooling).
REPRESENTATIONS = tuple((level, pooling) for level in LEVELS for pooling in POOLINGS)


def feature_name(view: str, level: str, pooling: str) -> str:
    """The tensor name in a --save-features file, e.g. `query.second_to_last.pooled`."""
    return f"{view}.{level}.{pooling}"


@torch.inference_mode()
def representations(encoder: Encoder, x: torch.Tensor) -> dict[tuple[str, str], torch.Tensor]:
    """One forward pass of a normalised (B, 3, S, S) batch; (B, D) float32 rows per representation.

    unpooled: the level's C x H x W map flattened (channel-major, as NCHW is laid out); pooled:
    its mean over the H x W spatial positions (C values). Every encoder returns NCHW levels, so
    for Swin this averages over tokens, never over channels.
    """
    levels = encoder(x)
    out = {}
    for level in LEVELS:
        feature = levels[encoder.level_index(level)].float()
        out[(level, "pooled")] = feature.mean(dim=(2, 3))
        out[(level, "unpooled")] = feature.flatten(start_dim=1)
    return out
