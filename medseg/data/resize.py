"""Resizing rules: images bilinear, label maps never interpolated."""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (H, W) or (H, W, 3) uint8 or float32 image to `size` = (H, W).

    PIL widens the bilinear kernel when shrinking, so downscaling is antialiased.
    """
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    if image.dtype == np.uint8:
        return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
    resized = Image.fromarray(image.astype(np.float32), mode="F").resize((width, height), Image.BILINEAR)
    return np.asarray(resized)


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a uint8 label map: class ids stay class ids."""
    height, width = size
    if labels.shape == (height, width):
        return labels
    return np.asarray(Image.fromarray(labels).resize((width, height), Image.NEAREST))


def resize_labels_max(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a label map so that a target pixel takes the maximum over the source pixels under it.

    Source rows (and columns) are partitioned among the target rows by position, so every
    source pixel lands under exactly one target pixel: a lesion a few pixels wide never
    vanishes when shrinking (nearest sampling would skip it). When enlarging it reduces to
    nearest-neighbour.
    """
    pooled = labels
    for axis, target in enumerate(size):
        source = pooled.shape[axis]
        starts = (np.arange(target) * source) // target
        pooled = np.maximum.reduceat(pooled, starts, axis=axis)
    return pooled
