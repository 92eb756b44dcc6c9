"""The paper's weight initialisation schemes (Appendix A.1.4)."""

from __future__ import annotations

import math

import torch
from torch import nn

NORM_LAYERS = (nn.BatchNorm2d, nn.LayerNorm)


def he_normal_(weight: torch.Tensor, gamma: float, fan_in: int) -> None:
    """Fill from N(0, gamma / fan_in): Eq. A.1 with delta = fan_in."""
    with torch.no_grad():
        weight.normal_(0.0, math.sqrt(gamma / fan_in))


def fan_in(layer: nn.Conv2d | nn.ConvTranspose2d | nn.Linear) -> int:
    """Number of inputs that reach one output unit of `layer`."""
    if isinstance(layer, nn.Linear):
        return layer.in_features
    kernel = math.prod(layer.kernel_size) * layer.in_channels // layer.groups
    if isinstance(layer, nn.ConvTranspose2d):
        # An output pixel of a transposed convolution gets kernel/stride taps (one for kernel 2,
        # stride 2); torch's fan computation reads its weight as a forward convolution's instead.
        return kernel // math.prod(layer.stride)
    return kernel


def _reset_bias_and_norms(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, NORM_LAYERS):
            layer.reset_parameters()  # weight 1, bias 0, and BatchNorm statistics 0 mean unit variance
        elif isinstance(getattr(layer, "bias", None), nn.Parameter):
            nn.init.zeros_(layer.bias)


def init_convnet(module: nn.Module) -> None:
    """U-Net and ResNet50 Attention U-Net: He normal (gamma 2, fan-in) weights, zero biases.

    The paper names the convolutions; linear layers (only the classification head) get the same.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            he_normal_(layer.weight, 2.0, fan_in(layer))
    _reset_bias_and_norms(module)


def init_swin(module: nn.Module) -> None:
    """Swin U-Net: truncated normal (std 0.02, values outside [-2, 2] redrawn), zero biases.

    The patch embedding and the final patch expanding get `he_normal_` with gamma 1/3 from their
    owners after this.
    """
    # Imported here: timm costs about 4 s per process, and the convolutional models need none of it.
    from timm.layers import trunc_normal_
    from timm.models.swin_transformer import WindowAttention

    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            trunc_normal_(layer.weight, std=0.02, a=-2.0, b=2.0)
        elif isinstance(layer, WindowAttention):
            trunc_normal_(layer.relative_position_bias_table, std=0.02, a=-2.0, b=2.0)
    _reset_bias_and_norms(module)
