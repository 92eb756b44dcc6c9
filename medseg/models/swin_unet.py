"""Swin U-Net (paper Appendix A.1.3; Cao et al. 2022) from timm's Swin Transformer stages.

timm's Swin blocks precompute the shifted-window attention mask and clamp the window for one
token grid, so every stage here is built for the configured image size, and the encoder refuses
inputs of any other size instead of silently mixing windows.
"""

from __future__ import annotations

import torch
from timm.layers import PatchEmbed, calculate_drop_path_rates
from timm.models.swin_transformer import SwinTransformerStage
from torch import nn

from medseg.errors import MedsegError
from medseg.models.encoder import Encoder, Level
from medseg.models.init import he_normal_, init_swin
from medseg.models.patch_expanding import PatchExpanding
from medseg.models.sizes import check_image_size, check_window_size, scaled_width

PATCH_SIZE = 4
DEPTHS = (2, 2, 2, 2)
NUM_HEADS = (3, 6, 12, 24)
DROP_PATH_RATE = 0.2
# Eq. A.1's gamma for the patch embedding and the final patch expanding.
EMBED_GAMMA = 1 / 3


class SwinEncoder(Encoder):
    """Swin-T-style encoder: 4x4 patch embedding, four stages of two Swin blocks, final LayerNorm.

    A level is the part of the encoder at one size and its output is its end (paper §3.1), as in
    the authors' own Swin U-Net (`UNet_encoder.forward` appends each level's output after its two
    Swin blocks, before the patch merging): level i is stage i's patch merging (none in stage 0)
    then its two Swin blocks, and level 3 (the bottleneck) ends with the final LayerNorm. These
    tensors are both the decoder's skips and the robustness representations. Levels have
    embed_dim * (1, 2, 4, 8) channels at strides 4, 8, 16, 32 (96 @ 56x56 ... 768 @ 7x7 at 224).
    embed_dim = 96 * width; the heads stay 3, 6, 12, 24 (head dim embed_dim / 3).
    Stochastic depth rises linearly from 0 to 0.2 over the blocks.
    """

    name = "swin_t"
    init_scheme = staticmethod(init_swin)

    def __init__(self, image_size: int, width: float = 1.0, window_size: int = 7) -> None:
        super().__init__(image_size, width)
        check_image_size("swin_unet", image_size, PATCH_SIZE * 2 ** (len(DEPTHS) - 1))
        embed_dim = scaled_width(96, width, NUM_HEADS[0], "Swin embedding dimension")
        self.window_size = window_size
        self.dims = [embed_dim * 2**i for i in range(len(DEPTHS))]
        self.grids = [image_size // PATCH_SIZE // 2**i for i in range(len(DEPTHS))]
        check_window_size(image_size, self.grids, window_size)
        self.drop_path_rates = calculate_drop_path_rates(DROP_PATH_RATE, list(DEPTHS), stagewise=True)
        self.levels = tuple(Level(dim, PATCH_SIZE * 2**i) for i, dim in enumerate(self.dims))

        self.patch_embed = PatchEmbed(
            img_size=image_size,
            patch_size=PATCH_SIZE,
            embed_dim=embed_dim,
            norm_layer=nn.LayerNorm,
            output_fmt="NHWC",
        )
        self.stages = nn.ModuleList(
            SwinTransformerStage(
                dim=self.dims[max(i - 1, 0)],
                out_dim=self.dims[i],
                input_resolution=(self.grids[max(i - 1, 0)],) * 2,
                depth=DEPTHS[i],
                downsample=i > 0,
                num_heads=NUM_HEADS[i],
                window_size=window_size,
                drop_path=self.drop_path_rates[i],
            )
            for i in range(len(DEPTHS))
        )
        self.norm = nn.LayerNorm(self.dims[-1])
        init_swin(self)
        he_normal_(self.patch_embed.proj.weight, EMBED_GAMMA, 3 * PATCH_SIZE**2)

    def identity(self) -> dict[str, str]:
        # The relative position bias tables have (2 * window - 1)**2 rows.
        return super().identity() | {"window_size": str(self.window_size)}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise MedsegError(
                f"the Swin encoder was built for {self.image_size}x{self.image_size} images but got "
                f"{x.shape[-2]}x{x.shape[-1]}; build the model for the image size it is given"
            )
        x = self.patch_embed(x)
        features = []
        for stage in self.stages:  # a timm stage: patch merging (identity in stage 0), then its blocks
            x = stage(x)
            features.append(x)  # the level's end: after its blocks, before the next patch merging
        features[-1] = self.norm(x)  # the bottleneck: after the last stage's blocks and the LayerNorm
        return [feature.permute(0, 3, 1, 2) for feature in features]  # timm's NHWC to NCHW


class SwinDecoderLevel(nn.Module):
    """Concatenate the skip, a linear layer back to `dim` channels, Swin blocks, optional patch expanding."""

    def __init__(self, encoder: SwinEncoder, index: int, expand: bool) -> None:
        super().__init__()
        dim = encoder.dims[index]
        self.fuse = nn.Linear(2 * dim, dim)
        self.stage = SwinTransformerStage(
            dim=dim,
            out_dim=dim,
            input_resolution=(encoder.grids[index],) * 2,
            depth=DEPTHS[index],
            downsample=False,
            num_heads=NUM_HEADS[index],
            window_size=encoder.window_size,
            drop_path=encoder.drop_path_rates[index],
        )
        self.expand = PatchExpanding(dim, 2, dim // 2) if expand else nn.Identity()

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.expand(self.stage(self.fuse(torch.cat([x, skip], dim=-1))))


class SwinDecoder(nn.Module):
    """Cao et al.'s symmetric decoder: patch expanding of the bottleneck, three `SwinDecoderLevel`s
    mirroring encoder stages 3, 2, 1 (same depths, heads and stochastic depth rates), LayerNorm,
    a final 4x patch expanding and a bias-free 1x1 projection to the classes.
    """

    def __init__(self, encoder: SwinEncoder, num_classes: int) -> None:
        super().__init__()
        dims = encoder.dims
        self.expand = PatchExpanding(dims[-1], 2, dims[-2])
        self.levels = nn.ModuleList(
            SwinDecoderLevel(encoder, index, expand=index > 0) for index in reversed(range(len(dims) - 1))
        )
        self.norm = nn.LayerNorm(dims[0])
        self.final_expand = PatchExpanding(dims[0], PATCH_SIZE, dims[0])
        self.head = nn.Conv2d(dims[0], num_classes, 1, bias=False)
        init_swin(self)
        he_normal_(self.final_expand.expand.weight, EMBED_GAMMA, dims[0])

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        *skips, x = [feature.permute(0, 2, 3, 1) for feature in features]  # back to NHWC
        x = self.expand(x)
        for level, skip in zip(self.levels, reversed(skips)):
            x = level(x, skip)
        x = self.final_expand(self.norm(x))
        return self.head(x.permute(0, 3, 1, 2))
