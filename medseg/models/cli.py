"""`medseg models`: list the models with their parameter counts and encoder level shapes."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from medseg.argtypes import (
    MIN_CLASSES,
    add_model_size_options,
    class_count,
)
from medseg.names import MODEL_NAMES

if TYPE_CHECKING:
    from medseg.models.segmentation import SegmentationModel


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the segmentation models, their parameter counts and encoder levels",
        description="List the segmentation models with parameter counts (encoder, decoder, total) "
        "and the shapes of their encoder levels at a given image size.",
    )
    add_model_size_options(parser)
    parser.add_argument(
        "--classes",
        type=class_count,
        default=2,
        help=f"output channels of the segmentation head, at least {MIN_CLASSES} (default: 2)",
    )
    parser.add_argument("--model", choices=MODEL_NAMES, action="append", help="only this model (repeatable)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from medseg.models.factory import build_model

    for name in args.model or MODEL_NAMES:
        model = build_model(name, args.classes, args.image_size, args.width, args.window_size)
        print(describe(model))


def describe(model: SegmentationModel) -> str:
    """A few lines: parameter counts, then one line per encoder level."""
    encoder = model.encoder
    n_encoder = sum(p.numel() for p in encoder.parameters())
    n_decoder = sum(p.numel() for p in model.decoder.parameters())
    names = {encoder.level_index(name): name for name in ("last", "second_to_last")}
    lines = [
        f"{model.name}: encoder {encoder.description()}, {encoder.image_size}x{encoder.image_size} input, "
        f"{model.num_classes} classes",
        f"  parameters: {n_encoder + n_decoder:,} = encoder {n_encoder:,} + decoder {n_decoder:,}",
        "  level  channels  stride  feature map",
    ]
    for index, level in enumerate(encoder.levels):
        side = encoder.image_size // level.stride
        shape = f"{level.channels}x{side}x{side}"
        lines.append(
            f"  {index + 1:>5}  {level.channels:>8}  {level.stride:>6}  {shape:<14} {names.get(index, '')}".rstrip()
        )
    return "\n".join(lines)
