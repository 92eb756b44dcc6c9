"""Stop a training run at the first NaN or infinity, in the loss or in the weights.

A loss can stay finite while the weights overflow (e.g. a bounded Dice loss with a huge
learning rate); both loops therefore check the weights after every optimizer update.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from medseg.errors import MedsegError


class NonFinite(MedsegError):
    """Training produced NaN or infinity; nothing of the run is written."""


def non_finite_tensor(module: nn.Module) -> str | None:
    """Name of the first parameter or floating buffer holding NaN or ±inf, or None.

    One reduction and one device sync over all tensors; the names are searched only on failure.
    """
    tensors = [(name, t) for name, t in module.state_dict().items() if t.is_floating_point()]
    if not tensors:
        return None
    # A sum is non-finite when any element is (or when the weights are ~1e38, broken anyway).
    sums = torch.stack([t.detach().float().sum() for _, t in tensors])
    if bool(torch.isfinite(sums).all()):
        return None
    return next(name for name, t in tensors if not bool(torch.isfinite(t.detach()).all()))


def check_finite(loss: float, module: nn.Module, where: str, advice: str) -> None:
    """Raise NonFinite naming `where` (e.g. "epoch 3, update 7 of 10") if the loss or a weight is not finite.

    Call it after the optimizer step, so `module` holds the updated weights.
    """
    if not math.isfinite(loss):
        raise NonFinite(f"non-finite training loss ({loss}) at {where}; {advice}")
    name = non_finite_tensor(module)
    if name is not None:
        raise NonFinite(f"non-finite weights ({name}) after the update at {where}; {advice}")
