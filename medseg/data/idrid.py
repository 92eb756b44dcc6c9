"""IDRiD (fundus JPEGs): microaneurysm segmentation on windows of the resized images."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from medseg.data.output import write_prepared
from medseg.data.readers import HIGH_DEPTH_MODES, check_same_shape, list_files, open_image, read_image
from medseg.data.resize import resize_image, resize_labels_max
from medseg.data.store import tiles, windows
from medseg.errors import DataError

log = logging.getLogger(__name__)

CLASSES = ["background", "microaneurysm"]
IMAGES = Path("A. Segmentation") / "1. Original Images"
MASKS = Path("A. Segmentation") / "2. All Segmentation Groundtruths"
LESION = "1. Microaneurysms"
SETS = {"train": "a. Training Set", "test": "b. Testing Set"}


def read_pair(raw: Path, image_path: Path, split: str, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The resized RGB image and its resized binary microaneurysm mask."""
    mask_path = raw / MASKS / SETS[split] / LESION / f"{image_path.stem}_MA.tif"
    if not mask_path.is_file():
        raise DataError(f"{mask_path}: microaneurysm mask of {image_path} is missing")
    image = read_image(image_path, "RGB")
    lesion = read_lesion_mask(mask_path)
    check_same_shape(image, image_path, lesion, mask_path)
    return resize_image(image, size), resize_labels_max(lesion.astype(np.uint8), size)


def read_lesion_mask(path: Path) -> np.ndarray:
    """Where a lesion mask marks lesion (any colour but black), decided per image mode.

    The released masks are red on black. Palette masks are read through their palette (the
    index says nothing about the colour), and an alpha channel is ignored, not taken as lesion.
    """
    image = open_image(path)
    if image.mode in ("P", "PA", "RGBA"):
        image = image.convert("RGB")
    elif image.mode in ("LA", "La"):
        image = image.convert("L")
    if image.mode not in ("1", "L", "RGB") and image.mode not in HIGH_DEPTH_MODES:
        raise DataError(f"{path}: lesion mask in image mode {image.mode}; expected a grey, RGB or palette image")
    values = np.asarray(image)
    return values.any(axis=-1) if values.ndim == 3 else values > 0


def prepare_idrid(
    raw: Path,
    out: Path,
    size: tuple[int, int] = (1120, 2240),
    window: int = 448,
    stride: int = 112,
    tile: int = 224,
) -> None:
    """Resize every image to `size` (H, W); index training windows and test tiles over them."""
    layout = {"train": windows(size, window, stride), "test": tiles(size, tile)}

    def prepare_split(split: str) -> tuple[list, list, list]:
        folder = raw / IMAGES / SETS[split]
        image_paths = list_files(folder, (".jpg", ".jpeg"), f"the IDRiD '{SETS[split]}' images")
        images, masks, rows = [], [], []
        for number, image_path in enumerate(image_paths):
            image, mask = read_pair(raw, image_path, split, size)
            images.append(image)
            masks.append(mask)
            side = window if split == "train" else tile
            for row, col, y0, x0 in layout[split]:
                rows.append(
                    {
                        "image": number,
                        "y0": y0,
                        "x0": x0,
                        "height": side,
                        "width": side,
                        "source": str(image_path.relative_to(raw)),
                        "image_id": image_path.stem,
                        "window_row": row,
                        "window_col": col,
                    }
                )
            log.info("%s: image %d/%d (%s)", split, number + 1, len(image_paths), image_path.name)
        return images, masks, rows

    counts = write_prepared(
        raw,
        out,
        SETS,
        prepare_split,
        CLASSES,
        type="idrid",
        channels=3,
        size=list(size),
        train_window=window,
        train_stride=stride,
        windows_per_train_image=len(layout["train"]),
        test_tile=tile,
        tiles_per_test_image=len(layout["test"]),
        masks="microaneurysm masks shrunk by max pooling: a pixel is positive when any source pixel under it is",
    )
    log.info("IDRiD prepared in %s: %s samples", out, counts)
