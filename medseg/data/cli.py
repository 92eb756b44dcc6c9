"""`medseg prepare`: raw dataset release -> prepared arrays and index (see medseg.data)."""

from __future__ import annotations

import argparse
from pathlib import Path

from medseg import paper
from medseg.argtypes import MIN_IMAGE_SIDE, class_name, image_side, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="prepare a raw dataset release for training",
        description="Read a raw dataset in its release layout and write results/data/<dataset>/: "
        "per split images.npy, masks.npy and index.parquet (ImageNet: index.parquet only), "
        "plus dataset.json. The output folder is replaced atomically, and only when it is new, empty "
        "or an earlier output of the same command; on bad input nothing is written.",
    )
    kinds = parser.add_subparsers(title="dataset types", metavar="TYPE", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        kind = kinds.add_parser(name, help=help, description=help)
        kind.add_argument("--raw", type=Path, required=True, help="folder of the raw release")
        kind.add_argument("--out", type=Path, required=True, help="output folder, e.g. results/data/<dataset>")
        return kind

    acdc = add(
        "acdc",
        "ACDC cine MRI: ED/ES frames from Info.cfg, 2-D slices, per-volume percentile "
        "normalisation to [0, 1], labels 0-3 resized nearest-neighbour",
    )
    acdc.add_argument(
        "--size",
        type=image_side,
        default=paper.PREPARED_SIZE,
        help=f"side of the square slices, at least {MIN_IMAGE_SIDE} (default {paper.PREPARED_SIZE})",
    )
    acdc.set_defaults(run=run_acdc)

    covid = add("covidqu", "COVID-QU-Ex COVID-19 infection subset: Train+Val -> train, Test -> test, masks binarised")
    covid.add_argument(
        "--size",
        type=image_side,
        default=paper.PREPARED_SIZE,
        help=f"side of the square images, at least {MIN_IMAGE_SIDE} (default {paper.PREPARED_SIZE})",
    )
    covid.set_defaults(run=run_covidqu)

    idrid = add(
        "idrid",
        "IDRiD microaneurysms: images resized, masks max-pooled, training windows and "
        "test tiles indexed over the resized images",
    )
    idrid.add_argument(
        "--resize",
        type=image_side,
        nargs=2,
        default=list(paper.IDRID_RESIZE),
        metavar=("H", "W"),
        help="size the images are resized to (default {} {})".format(*paper.IDRID_RESIZE),
    )
    idrid.add_argument(
        "--window",
        type=positive_int,
        default=paper.IDRID_WINDOW,
        help=f"training window side (default {paper.IDRID_WINDOW})",
    )
    idrid.add_argument(
        "--stride",
        type=positive_int,
        default=paper.IDRID_STRIDE,
        help=f"training window stride (default {paper.IDRID_STRIDE})",
    )
    idrid.add_argument(
        "--tile",
        type=positive_int,
        default=paper.IDRID_TILE,
        help=f"side of the equal test tiles partitioning each image (default {paper.IDRID_TILE}: 50 tiles)",
    )
    idrid.set_defaults(run=run_idrid)

    imagenet = add("imagenet", "ImageNet or any ImageFolder: index of (path, label) with optional budget")
    imagenet.add_argument(
        "--classes",
        type=positive_int,
        default=None,
        help="use this many classes, spread evenly over the sorted class list (default all)",
    )
    imagenet.add_argument(
        "--images-per-class",
        type=positive_int,
        default=None,
        help="first N training images of each class (default all)",
    )
    imagenet.add_argument(
        "--val-images-per-class",
        type=positive_int,
        default=None,
        help="first N validation images of each class (default all)",
    )
    imagenet.add_argument("--workers", type=positive_int, default=8, help="threads reading image headers (default 8)")
    imagenet.set_defaults(run=run_imagenet)

    folder = add("folder", "your own data: images/, masks/ with matching names and splits.csv (image,split)")
    folder.add_argument(
        "--classes",
        required=True,
        nargs="+",
        metavar="NAME",
        type=class_name,
        help="class names, background first, e.g. --classes background lesion",
    )
    folder.add_argument(
        "--size",
        type=image_side,
        default=paper.PREPARED_SIZE,
        help=f"side of the square images, at least {MIN_IMAGE_SIDE} (default {paper.PREPARED_SIZE})",
    )
    folder.set_defaults(run=run_folder)


def run_acdc(args: argparse.Namespace) -> None:
    from medseg.data.acdc import prepare_acdc

    prepare_acdc(args.raw, args.out, args.size)


def run_covidqu(args: argparse.Namespace) -> None:
    from medseg.data.covidqu import prepare_covidqu

    prepare_covidqu(args.raw, args.out, args.size)


def run_idrid(args: argparse.Namespace) -> None:
    from medseg.data.idrid import prepare_idrid

    prepare_idrid(args.raw, args.out, tuple(args.resize), args.window, args.stride, args.tile)


def run_imagenet(args: argparse.Namespace) -> None:
    from medseg.data.imagenet import prepare_imagenet

    prepare_imagenet(args.raw, args.out, args.classes, args.images_per_class, args.val_images_per_class, args.workers)


def run_folder(args: argparse.Namespace) -> None:
    from medseg.data.folder import prepare_folder

    prepare_folder(args.raw, args.out, args.classes, args.size)
