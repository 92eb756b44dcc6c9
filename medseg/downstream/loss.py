"""The output-channel convention of a segmentation task and the Dice loss of Eq. A.2.

A task has C+1 classes (background first). As in the paper (Appendix A.4), a binary task
(C = 1) has ONE output channel read through a sigmoid as the foreground probability p, the
background probability being 1 - p; a multiclass task has C+1 channels read through a softmax.
So the number of channels tells which: 1 channel is binary, K >= 2 channels are K classes.
Training, evaluation and the metrics all read logits through the functions here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medseg.errors import MedsegError

SMOOTH = 1e-5  # zeta of Eq. A.2


def output_channels(num_classes: int) -> int:
    """Model output channels for a task with `num_classes` classes (C+1, background included)."""
    if num_classes < 2:
        raise MedsegError(f"a segmentation task needs a background and at least one class, got {num_classes} class(es)")
    return 1 if num_classes == 2 else num_classes


def num_classes_of(logits: torch.Tensor) -> int:
    """The number of classes (C+1) that logits of shape B x channels x H x W stand for."""
    if logits.dim() != 4:
        raise ValueError(f"expected logits of shape B x channels x H x W, got {tuple(logits.shape)}")
    channels = logits.shape[1]
    return 2 if channels == 1 else channels


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """B x (C+1) x H x W class probabilities: softmax, or [1 - sigmoid, sigmoid] for one channel."""
    num_classes_of(logits)
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(logits, dim=1)


def predict(logits: torch.Tensor) -> torch.Tensor:
    """B x H x W predicted class ids (Appendix A.5): argmax, or sigmoid > 0.5 for one channel."""
    num_classes_of(logits)
    if logits.shape[1] == 1:
        # sigmoid(z) > 0.5 exactly when z > 0; comparing logits avoids sigmoid's rounding at 0.5.
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = SMOOTH) -> torch.Tensor:
    """Eq. A.2: 1 - mean over all C+1 classes of (2<p_c, y_c> + zeta) / (|p_c|^2 + |y_c|^2 + zeta).

    logits: B x channels x H x W (see the module docstring); target: B x H x W class ids. The
    inner products and squared norms sum over the whole batch (every image and pixel), not per
    image, and the background class counts like the others.
    """
    num_classes = num_classes_of(logits)
    if target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}")
    # Sums over a million pixels lose too much in half precision (autocast): compute in float32.
    p = probabilities(logits.float())
    y = F.one_hot(target.long(), num_classes).permute(0, 3, 1, 2).to(p.dtype)
    dims = (0, 2, 3)
    intersection = (p * y).sum(dims)
    denominator = (p * p).sum(dims) + y.sum(dims)  # y is 0/1, so |y_c|^2 is its pixel count
    return 1 - ((2 * intersection + smooth) / (denominator + smooth)).mean()
