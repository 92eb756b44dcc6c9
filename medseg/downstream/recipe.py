"""Optimizer and learning-rate schedule of downstream training (Appendix A.4), from torch's parts.

SGD with momentum 0.9 and weight decay 1e-4 on the trainable parameters (decoder-only training
leaves the frozen encoder out), and torch's `PolynomialLR(total_iters=N, power=0.9)` stepped after
every optimizer step, so optimizer step i (0-based) of N runs at lr 0.05 (1 - i/N)^0.9.
"""

from __future__ import annotations

import torch
from torch import nn

from medseg.downstream.settings import Recipe
from medseg.paper import POWER


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.SGD:
    """SGD over the parameters that require gradients."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.PolynomialLR:
    """lr_i = base (1 - i / total_steps)^0.9 for optimizer step i; call `step()` after each optimizer step."""
    return torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total_steps, power=POWER)
