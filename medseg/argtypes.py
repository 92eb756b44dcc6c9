"""Argument types for the `medseg` subcommands, with the same limits as the config schema, and the
options several subcommands share.

tests/test_cli_limits.py checks every limit here against workflow/schemas/config.schema.yaml.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

from medseg import paper

# Smallest image side a preparer writes (the schema's `size` and `resize` minimum).
MIN_IMAGE_SIDE = 8
# Smallest model input (U-Net: a multiple of 16; the builders check the rest), `models.image_size`.
MIN_MODEL_IMAGE_SIZE = 16
# Largest model input (the schema's `models.image_size` maximum; encoder files recording more are
# refused). The paper uses 224; at 4096 one image's first U-Net level alone is 64 x 4096 x 4096
# float32 values = 4 GiB, so larger inputs only end in an allocation failure.
MAX_MODEL_IMAGE_SIZE = 4096
# A segmentation task has a background and at least one foreground class.
MIN_CLASSES = 2
# BatchNorm cannot train on one sample, so a downstream batch holds two or more (`downstream.batch`).
MIN_SEGMENTATION_BATCH = 2
# Class names become index columns `pixels_<name>` (the schema's `classes` item pattern).
CLASS_NAME = re.compile(r"[A-Za-z0-9_]+")


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer of at least {minimum}, got {text}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def int_between(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type: an integer from minimum to maximum."""
    at_least = int_at_least(minimum)

    def parse(text: str) -> int:
        value = at_least(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"expected an integer from {minimum} to {maximum}, got {text}")
        return value

    parse.__name__ = f"integer from {minimum} to {maximum}"
    return parse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def positive_float(text: str) -> float:
    """An argparse type: a number > 0."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number greater than 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a number >= 0."""
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {text}")
    return value


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
image_side = int_at_least(MIN_IMAGE_SIDE)
model_image_size = int_between(MIN_MODEL_IMAGE_SIZE, MAX_MODEL_IMAGE_SIZE)
segmentation_batch = int_at_least(MIN_SEGMENTATION_BATCH)


def class_name(text: str) -> str:
    """An argparse type: letters, digits and underscores only."""
    if not CLASS_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"class names may hold letters, digits and _ only, got {text!r}")
    return text


class_count = int_at_least(MIN_CLASSES)


def add_model_size_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--image-size, --width and --window-size of the models, with the paper's values as defaults."""
    parser.add_argument(
        "--image-size",
        type=model_image_size,
        default=paper.IMAGE_SIZE,
        help=f"square input size in pixels, {MIN_MODEL_IMAGE_SIZE} to {MAX_MODEL_IMAGE_SIZE} (default: {paper.IMAGE_SIZE})",
    )
    parser.add_argument(
        "--width",
        type=positive_float,
        default=paper.WIDTH,
        help="width multiplier, 1 = the paper's: U-Net base width 64*w, ResNet stage widths *w, Swin embed dim "
        f"96*w (default: {paper.WIDTH:g})",
    )
    parser.add_argument(
        "--window-size",
        type=positive_int,
        default=paper.WINDOW_SIZE,
        help=f"Swin attention window; ignored by the other models (default: {paper.WINDOW_SIZE})",
    )
