"""Scoring a segmentation model on the test split (Appendix A.5): `SegmentationMetrics` over every test sample."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medseg.downstream.data import Task
from medseg.downstream.metrics import SegmentationMetrics, dice_index


@torch.no_grad()
def evaluate(model: nn.Module, task: Task, batch: int, hd95: bool = True) -> SegmentationMetrics:
    """Every test sample in order, in eval mode (bf16 autocast on a GPU); the model's mode is restored."""
    metrics = SegmentationMetrics(task.classes, hd95=hd95)
    device = task.test.images.device
    cuda = device.type == "cuda"
    training = model.training
    model.eval()
    try:
        for start in range(0, len(task.test), batch):
            ids = torch.arange(start, min(start + batch, len(task.test)))
            x, labels = task.test_batch(ids)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                logits = model(x)
            metrics.update(logits.float(), labels)
    finally:
        model.train(training)
    return metrics


def mean_dice(metrics: SegmentationMetrics) -> float:
    """A.5's Dice: the foreground class's for a binary task, the mean over the foreground classes otherwise."""
    counts = metrics.counts()
    return float(np.mean(dice_index(counts["tp"], counts["fp"], counts["fn"])[1:]))
