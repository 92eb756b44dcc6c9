"""The simple and advanced pretraining recipes (paper §5.3, Appendix A.3, Algorithm 1) from timm's parts.

Both: RandomResizedCrop with relative area U[0.8, 1] (timm's default aspect ratios 3/4-4/3) to
the image size and a horizontal flip with p 0.5; AdamW (betas 0.9/0.999, decoupled weight decay
0.05, none on biases, norms and Swin's relative position tables, as timm does); cosine decay
with linear warmup stepped per optimizer update; label smoothing 0.1. Validation: the shorter
side resized to the image size, then a centre crop.

advanced adds, in Algorithm 1's order: RandAugment (rand-m9-mstd0.5-inc1) per image; per image of a
micro-batch CutMix (p 0.5, alpha 1.0) or mixup (p 0.4, alpha 0.8) with its mirror image in the
micro-batch, or nothing (p 0.1); then random erasing (p 0.25, area 0.02-0.33, aspect 0.3-3.3);
label smoothing applies to the mixed targets.
"""

from __future__ import annotations

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, Mixup, create_transform
from timm.data.random_erasing import RandomErasing
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2, param_groups_weight_decay
from timm.scheduler import create_scheduler_v2
from timm.scheduler.scheduler import Scheduler
from torch import nn

from medseg.pretrain.settings import Settings

LABEL_SMOOTHING = 0.1
WEIGHT_DECAY = 0.05
BETAS = (0.9, 0.999)
CROP_AREA = (0.8, 1.0)
HFLIP = 0.5
INTERPOLATION = "bilinear"
# "inc1", as in DeiT, Swin and ConvNeXt (the recipes §5.3 cites): solarize, posterize and the
# enhance ops get stronger with the magnitude (without it solarize and posterize get weaker).
RAND_AUGMENT = "rand-m9-mstd0.5-inc1"
# ConvNeXt's mixing: prob 0.9 of mixing an image, CutMix for 5/9 of those, so per image CutMix
# 0.5, mixup 0.4, nothing 0.1 (Algorithm 1's xi <= 0.5, <= 0.9).
MIXUP_ALPHA = 0.8
CUTMIX_ALPHA = 1.0
MIX_PROB = 0.9
CUTMIX_SHARE = 5 / 9
ERASE_PROB = 0.25
ERASE_AREA = (0.02, 0.33)
ERASE_ASPECT = (0.3, 3.3)
# Warmup from 0 and cosine down to 1e-6, as ConvNeXt's schedule (the advanced recipe's source).
WARMUP_START_LR = 0.0
MIN_LR = 1e-6


def train_transform(scheme: str, image_size: int):
    """Per-image training transform: PIL image in, uint8 CHW tensor out (normalised on the device)."""
    return create_transform(
        image_size,
        is_training=True,
        scale=CROP_AREA,
        hflip=HFLIP,
        color_jitter=None,  # the paper uses no colour jitter in either recipe
        auto_augment=RAND_AUGMENT if scheme == "advanced" else None,
        interpolation=INTERPOLATION,
        re_prob=0.0,  # erasing comes after mixing (Algorithm 1), in BatchAugment
        use_prefetcher=True,
    )


def eval_transform(image_size: int):
    """Validation transform: shorter side to `image_size`, centre crop, uint8 CHW tensor."""
    return create_transform(
        image_size, is_training=False, crop_pct=1.0, interpolation=INTERPOLATION, use_prefetcher=True
    )


class BatchAugment:
    """The device side of a recipe: uint8 micro-batch in, normalised float inputs and targets out."""

    def __init__(self, scheme: str, num_classes: int, device: torch.device) -> None:
        self.mean = torch.tensor(IMAGENET_DEFAULT_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_DEFAULT_STD, device=device).view(1, 3, 1, 1)
        self.mixup = self.erase = None
        if scheme == "advanced":
            self.mixup = Mixup(
                mixup_alpha=MIXUP_ALPHA,
                cutmix_alpha=CUTMIX_ALPHA,
                prob=MIX_PROB,
                switch_prob=CUTMIX_SHARE,
                mode="elem",
                label_smoothing=LABEL_SMOOTHING,
                num_classes=num_classes,
            )
            # Algorithm 1 "blackens out" the erased area, so erasing runs on pixel values in
            # [0, 1], before normalisation, with timm's constant fill 0 (= black), not on
            # normalised tensors where timm's 0 would be the mean colour.
            self.erase = RandomErasing(
                ERASE_PROB,
                min_area=ERASE_AREA[0],
                max_area=ERASE_AREA[1],
                min_aspect=ERASE_ASPECT[0],
                max_aspect=ERASE_ASPECT[1],
                mode="const",
                device=device,
            )

    def pixels(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed and erased images in [0, 1] and their targets (class ids, or soft for advanced)."""
        x = images.float().div_(255)
        if self.mixup is None:
            return x, labels
        x, targets = self.mixup(x, labels)
        return self.erase(x), targets

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, targets = self.pixels(images, labels)
        return (x - self.mean) / self.std, targets

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Validation input: uint8 in, normalised float out."""
        return (images.float().div_(255) - self.mean) / self.std


def train_loss(scheme: str) -> nn.Module:
    """Cross entropy with label smoothing 0.1 (advanced: on the smoothed, mixed soft targets)."""
    return SoftTargetCrossEntropy() if scheme == "advanced" else LabelSmoothingCrossEntropy(LABEL_SMOOTHING)


def _no_decay_names(model: nn.Module) -> set[str]:
    # timm's Swin Transformer exempts its relative position bias tables from weight decay.
    return {name for name, _ in model.named_parameters() if "relative_position_bias_table" in name}


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """AdamW with decoupled weight decay 0.05 on the weight matrices and kernels only."""
    return create_optimizer_v2(
        model,
        opt="adamw",
        lr=lr,
        weight_decay=WEIGHT_DECAY,
        betas=BETAS,
        param_group_fn=lambda m: param_groups_weight_decay(m, WEIGHT_DECAY, no_weight_decay_list=_no_decay_names(m)),
    )


def make_scheduler(optimizer: torch.optim.Optimizer, settings: Settings, updates_per_epoch: int) -> Scheduler:
    """Linear warmup over `warmup_epochs`, then cosine decay ending with the planned length.

    Stepped per optimizer update: `step_update(n)` after the n-th update sets the learning rate
    of update n (0-based); the warmup is a prefix, so the peak is reached exactly when it ends.
    """
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched="cosine",
        num_epochs=settings.planned_epochs - settings.warmup_epochs,
        warmup_epochs=settings.warmup_epochs,
        warmup_prefix=True,
        warmup_lr=WARMUP_START_LR,
        min_lr=MIN_LR,
        step_on_epochs=False,
        updates_per_epoch=updates_per_epoch,
    )
    return scheduler
