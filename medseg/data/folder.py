"""A user's own segmentation data: `images/` and `masks/` with matching names, plus `splits.csv`.

{raw}/images/<name>.png|.jpg|.jpeg|.tif|.tiff   grey or colour, 8 or 16 bit
{raw}/masks/<stem>.png|.tif|.tiff               class ids 0..C-1 (a binary task may use 0/255)
{raw}/splits.csv                                columns `image,split`; split is train or test
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from medseg.data.output import write_prepared
from medseg.data.readers import (
    GRAYSCALE_MODES,
    check_labels,
    check_same_shape,
    read_header,
    read_image,
    read_label_map,
    require_dir,
)
from medseg.data.resize import resize_image, resize_labels
from medseg.data.store import full_image_row
from medseg.errors import DataError

log = logging.getLogger(__name__)

MASK_SUFFIXES = (".png", ".tif", ".tiff")
SPLITS = ("train", "test")


def read_csv_rows(path: Path) -> list[list[str]]:
    """The rows of a UTF-8 CSV file (a byte-order mark is allowed), errors naming the line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text; save the file as UTF-8") from None
    try:
        return [row for row in csv.reader(text.splitlines()) if row]
    except csv.Error as error:
        raise DataError(f"{path}: not a readable CSV file ({error})") from None


def read_splits(raw: Path) -> dict[str, str]:
    """Image file name -> split, from splits.csv; every image listed once, in train or test."""
    path = raw / "splits.csv"
    if not path.is_file():
        raise DataError(f"{path} is missing; a folder dataset needs a splits.csv with columns image,split")
    header, *rows = read_csv_rows(path) or [[]]
    if header[:2] != ["image", "split"]:
        raise DataError(f"{path}: expected the columns image,split, found {header}")
    if not rows:
        raise DataError(f"{path} lists no images; expected one row image,split per image")
    splits: dict[str, str] = {}
    for line, row in enumerate(rows, 2):
        if len(row) != len(header):
            raise DataError(
                f"{path}, line {line}: expected {len(header)} fields ({','.join(header)}), found {len(row)}: {row}"
            )
        image, split = row[0], row[1]
        if split not in SPLITS:
            raise DataError(f"{path}, line {line}: split must be train or test, found {split!r}")
        if image in splits:
            leak = " (test data would leak into training)" if splits[image] != split else ""
            raise DataError(f"{path}, line {line}: {image} is listed again, as {split} after {splits[image]}{leak}")
        splits[image] = split
    return splits


def find_mask(raw: Path, image_name: str) -> Path:
    stem = Path(image_name).stem
    for suffix in MASK_SUFFIXES:
        path = raw / "masks" / f"{stem}{suffix}"
        if path.is_file():
            return path
    raise DataError(f"{raw / 'masks' / stem}.png: mask of {raw / 'images' / image_name} is missing")


def read_mask(path: Path, classes: list[str]) -> np.ndarray:
    mask = read_label_map(path)
    if len(classes) == 2 and set(np.unique(mask).tolist()) <= {0, 255}:
        mask = (mask > 0).astype(np.uint8)  # binary masks are often saved as 0/255
    check_labels(mask, path, len(classes), "dataset's")
    return mask.astype(np.uint8)


def storage_mode(raw: Path, names: list[str]) -> str:
    """ "L" when every image is grey, else "RGB": a grey image among colour ones is stored as RGB."""
    modes = {name: read_header(raw / "images" / name).mode for name in names}
    colour = [name for name, mode in modes.items() if mode not in GRAYSCALE_MODES]
    if colour and len(colour) < len(names):
        grey = next(name for name in names if name not in colour)
        log.info("images are grey (e.g. %s) and colour (e.g. %s): storing all with 3 channels", grey, colour[0])
    return "RGB" if colour else "L"


def prepare_folder(raw: Path, out: Path, classes: list[str], size: int = 256) -> None:
    """Write train and test images of size x size from a folder dataset (layout above)."""
    if len(classes) < 2:
        raise DataError(f"a folder dataset needs at least two classes (background first), got {classes}")
    repeated = sorted({name for name in classes if classes.count(name) > 1})
    if repeated:
        raise DataError(f"class names must be distinct, {', '.join(repeated)} appears more than once in {classes}")
    require_dir(raw / "images", "the folder dataset's images/")
    splits = read_splits(raw)
    mode = storage_mode(raw, list(splits))

    def prepare_split(split: str) -> tuple[list, list, list]:
        names = [name for name, name_split in splits.items() if name_split == split]
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
        raw,
        out,
        SPLITS,
        prepare_split,
        classes,
        type="folder",
        channels=1 if mode == "L" else 3,
        size=[size, size],
    )
    log.info("folder dataset prepared in %s: %s images", out, counts)
