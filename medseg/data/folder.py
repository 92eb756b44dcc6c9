"""A user's own segmentation data: `images/` and `masks/` with matching names, plus `splits.csv`.

    {raw}/images/<name>.png|.jpg|.jpeg|.tif|.tiff   8-bit grayscale or RGB
    {raw}/masks/<stem>.png|.tif|.tiff               class ids 0..C-1 (a binary task may use 0/255)
    {raw}/splits.csv                                columns `image,split`; split is train or test
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from medseg.data.readers import check_labels, check_same_shape, read_header, read_image, require_dir
from medseg.data.resize import resize_image, resize_labels
from medseg.data.store import full_image_row, write_prepared
from medseg.errors import DataError

log = logging.getLogger(__name__)

MASK_SUFFIXES = (".png", ".tif", ".tiff")
GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def read_splits(raw: Path) -> pd.DataFrame:
    path = raw / "splits.csv"
    if not path.is_file():
        raise DataError(f"{path} is missing; a folder dataset needs a splits.csv with columns image,split")
    splits = pd.read_csv(path, dtype=str)
    if list(splits.columns[:2]) != ["image", "split"]:
        raise DataError(f"{path}: expected the columns image,split, found {list(splits.columns)}")
    if splits.empty:
        raise DataError(f"{path} lists no images; expected one row image,split per image")
    unknown = sorted(set(splits["split"]) - {"train", "test"})
    if unknown:
        raise DataError(f"{path}: split values must be train or test, found {unknown}")
    return splits


def find_mask(raw: Path, image_name: str) -> Path:
    stem = Path(image_name).stem
    for suffix in MASK_SUFFIXES:
        path = raw / "masks" / f"{stem}{suffix}"
        if path.is_file():
            return path
    raise DataError(f"{raw / 'masks' / stem}.png: mask of {raw / 'images' / image_name} is missing")


def read_mask(path: Path, classes: list[str]) -> np.ndarray:
    mask = read_image(path, "L")
    if len(classes) == 2 and set(np.unique(mask).tolist()) <= {0, 255}:
        mask = (mask > 0).astype(np.uint8)  # binary masks are often saved as 0/255
    check_labels(mask, path, len(classes), "dataset's")
    return mask


def prepare_folder(raw: Path, out: Path, classes: list[str], size: int = 256) -> None:
    """Write train and test images of size x size from a folder dataset (layout above)."""
    if len(classes) < 2:
        raise DataError(f"a folder dataset needs at least two classes (background first), got {classes}")
    require_dir(raw / "images", "the folder dataset's images/")
    splits = read_splits(raw)
    first_mode, _, _ = read_header(raw / "images" / splits["image"].iloc[0])
    mode = "L" if first_mode in GRAYSCALE_MODES else "RGB"  # every image is converted to this

    def prepare_split(split: str) -> tuple[list, list, list]:
        names = splits.loc[splits["split"] == split, "image"].tolist()
        if not names:
            raise DataError(f"{raw / 'splits.csv'}: no images in split {split}")
        images, masks, rows = [], [], []
        for name in names:
            image_path = raw / "images" / name
            mask_path = find_mask(raw, name)
            image, mask = read_image(image_path, mode), read_mask(mask_path, classes)
            check_same_shape(image, image_path, mask, mask_path)
            images.append(resize_image(image, (size, size)))
            masks.append(resize_labels(mask, (size, size)))
            rows.append(full_image_row(len(rows), (size, size), source=f"images/{name}", image_id=Path(name).stem))
        log.info("%s: %d images", split, len(names))
        return images, masks, rows

    counts = write_prepared(
        out, ("train", "test"), prepare_split, classes,
        type="folder", channels=1 if mode == "L" else 3, size=[size, size],
    )
    log.info("folder dataset prepared in %s: %s images", out, counts)
